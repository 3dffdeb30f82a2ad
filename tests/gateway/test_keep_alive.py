"""The gateway keeps an idle connection open longer than clients' pools keep one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway import serving
from services import runtime
from services.settings import Settings


def test_idle_connections_outlive_client_pools() -> None:
    """A server that closes an idle connection before its client's pool lets it go races
    that client's next request on it (ReadError): the server must close last."""
    assert Settings().keep_alive_s > httpx.Limits().keepalive_expiry


def test_serve_gives_uvicorn_the_keep_alive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("VEIL_HOME", "VEIL_PROCESSES", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(name, "")  # serve() sets them for its processes; restored after
    monkeypatch.setattr(runtime, "prepare_processes", lambda settings: None)
    given: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: given.update(options))
    serving.serve(Settings(home=tmp_path, processes=2, keep_alive_s=90), "127.0.0.1", 0)
    assert given["timeout_keep_alive"] == 90
