"""The server's log: uvicorn's text lines, or one JSON object per line (`VEIL_LOG_FORMAT=json`).

Neither format logs a query string (a client may put anything in one, a key included), a
header or a body. A JSON line names an exception by its type and stack, never its message,
which may quote a value.
"""

from __future__ import annotations

import copy
import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# The arguments of uvicorn's access record, in its order.
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class PathOnly(logging.Filter):
    """Cuts the query string from the target of uvicorn's access records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == len(ACCESS_FIELDS):
            client, method, target, version, status = record.args
            record.args = (client, method, str(target).split("?", 1)[0], version, status)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger and message; an access record's request
    fields; an exception's type and stack."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(zip(ACCESS_FIELDS, record.args, strict=False))
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = {
                "type": record.exc_info[0].__name__,
                "stack": traceback.format_tb(record.exc_info[2]),
            }
        return json.dumps(entry, ensure_ascii=False, default=str)


def config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document for uvicorn to apply in every gateway process."""
    if log_format == "json":
        return {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"path_only": {"()": PathOnly}},
            # uvicorn looks these two formatters up by name.
            "formatters": {"default": {"()": JsonFormatter}, "access": {"()": JsonFormatter}},
            "handlers": {
                "json": {
                    "class": "logging.StreamHandler",
                    "formatter": "default",
                    "filters": ["path_only"],
                    "stream": "ext://sys.stderr",
                }
            },
            "loggers": {
                "uvicorn": {"level": "INFO"},
                "uvicorn.access": {"level": "INFO"},
            },
            "root": {"handlers": ["json"], "level": "INFO"},
        }
    text = copy.deepcopy(LOGGING_CONFIG)
    text["filters"] = {"path_only": {"()": PathOnly}}
    text["handlers"]["access"]["filters"] = ["path_only"]
    return text
