"""A job process: a fresh interpreter the zygote executes, sealed, then running one job's code.

Run as `python -I -m sandbox.jobs.child FD START`: FD is its socket to the runner, START its
slot, limits and whether the network was left. It imports what a job may use, seals itself,
and only then reads the job's code.

Everything the job can do outside its own memory goes over one socket to the runner:
`sql(text)` asks for an aggregate answer and `publish(name, columns, rows)` offers a table.
Nothing else is open. What the job prints goes nowhere; what goes wrong leaves as a code,
with the exception's kind and the job's line (`failures.py` says why that is safe).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from sandbox.errors import JobRejected
from sandbox.jobs import helpers, wire
from sandbox.jobs.failures import failure
from sandbox.jobs.gate import coded_exception, compile_job, job_globals
from sandbox.jobs.seal import SealFailed, SealLimits, seal

# Exit codes the runner reads when no message explains the end.
EXIT_DONE = 0
EXIT_FAILED = 10
EXIT_OUT_OF_MEMORY = 11
EXIT_SEAL_FAILED = 12
EXIT_REJECTED = 13
EXIT_LOST = 14
MAX_FD = 1 << 20


@coded_exception
class QueryFailed(Exception):
    """`sql()` was refused or failed; the argument is the stable code, as over HTTP."""


@coded_exception
class PublishRefused(Exception):
    """`publish()` was given something that is not a table the gate can check."""


def main() -> None:
    code = EXIT_SEAL_FAILED
    try:
        channel = socket.socket(fileno=int(sys.argv[-2]))
        code = run(channel, json.loads(sys.argv[-1]))
    finally:
        os._exit(code)


def run(channel: socket.socket, start: dict[str, Any]) -> int:
    """The child's whole life; returns its exit code."""
    keep_only(channel.fileno())
    try:
        seal(
            SealLimits(**start["limits"]), start["slot"], network_left=start["network_left"] is True
        )
    except (SealFailed, OSError, TypeError, KeyError):
        return EXIT_SEAL_FAILED
    try:
        code_text = wire.receive(channel)["code"]
        code = compile_job(code_text)
    except JobRejected as exc:
        return _say(channel, EXIT_REJECTED, op="rejected", violations=_violations(exc))
    except (wire.WireError, KeyError):
        return EXIT_LOST
    functions = {"sql": _asker(channel), "publish": _publisher(channel), **helpers.FUNCTIONS}
    try:
        exec(code, job_globals(functions))  # noqa: S102 - restricted bytecode inside the seal
    except MemoryError:
        return _say(channel, EXIT_OUT_OF_MEMORY, op="failed", code="JOB_OUT_OF_MEMORY")
    except _Lost:
        return EXIT_LOST
    except BaseException as exc:  # noqa: BLE001 - only a code, a kind and a line leave
        return _say(channel, EXIT_FAILED, op="failed", code="JOB_FAILED", **failure(exc))
    return _say(channel, EXIT_DONE, op="done")


class _Lost(BaseException):
    """The runner went away: not an error the job may catch and carry on from."""


def _asker(channel: socket.socket) -> Callable[[str], dict]:
    def sql(text: str) -> dict:
        if not isinstance(text, str):
            raise QueryFailed("QUERY_REJECTED")
        reply = _ask(channel, {"op": "sql", "sql": text})
        if not reply.get("ok"):
            raise QueryFailed(str(reply.get("code", "QUERY_FAILED")))
        return {"columns": list(reply["columns"]), "rows": [list(row) for row in reply["rows"]]}

    return sql


def _publisher(channel: socket.socket) -> Callable[[str, list, list], None]:
    def publish(name: str, columns: list, rows: list) -> None:
        try:
            table = {"columns": _plain(columns), "rows": _plain(rows)}
            message = {"op": "publish", "name": name, **table}
            wire.encode(message)
        except (TypeError, ValueError, wire.WireError, RecursionError) as exc:
            raise PublishRefused("OUTPUT_INVALID") from exc
        reply = _ask(channel, message)
        if not reply.get("ok"):
            raise PublishRefused(str(reply.get("code", "OUTPUT_INVALID")))

    return publish


def _plain(value: Any) -> Any:
    """Lists, tuples and scalars as JSON carries them; anything else is not a table."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or type(value) in (str, int, float, bool):
        return value
    raise TypeError("not a plain value")


def _ask(channel: socket.socket, message: dict) -> dict:
    try:
        wire.send(channel, message)
        return wire.receive(channel)
    except wire.WireError as exc:
        raise _Lost from exc


def _say(channel: socket.socket, exit_code: int, **message: Any) -> int:
    try:
        wire.send(channel, message)
    except wire.WireError:
        return EXIT_LOST
    return exit_code


def _violations(exc: JobRejected) -> list[dict]:
    return [violation.as_dict() for violation in exc.violations]


def keep_only(channel_fd: int) -> None:
    """Standard streams to /dev/null and every other inherited descriptor closed."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, channel_fd)
    os.closerange(channel_fd + 1, MAX_FD)


if __name__ == "__main__":
    main()
