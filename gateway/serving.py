"""Serving the HTTP API with uvicorn: one gateway process, or several sharing one port."""

from __future__ import annotations

import os
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from gateway.logs import config as log_config
from services.settings import Settings


class NoDelayHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

    With several workers uvicorn binds the listening socket itself, without IPPROTO_TCP, so
    asyncio leaves TCP_NODELAY unset and each keep-alive response after the first waits about
    40 ms for the client's delayed ACK (uvicorn issue #3149)."""

    def connection_made(self, transport: Any) -> None:
        connection = transport.get_extra_info("socket")
        if connection is not None and connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until stopped; several processes when `settings.processes` says so."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "log_config": log_config(settings.log_format),
        "http": NoDelayHTTP,
        "timeout_keep_alive": settings.keep_alive_s,
    }
    if settings.processes == 1:
        from gateway.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    from services.runtime import prepare_processes

    prepare_processes(settings)
    # Each process builds its app from the environment, as `create_app()` reads it.
    os.environ.update(
        VEIL_HOME=str(settings.home.resolve()),
        VEIL_PROCESSES=str(settings.processes),
        PROMETHEUS_MULTIPROC_DIR=str(settings.metrics_root.resolve()),
    )
    uvicorn.run("gateway.app:create_app", factory=True, workers=settings.processes, **options)
