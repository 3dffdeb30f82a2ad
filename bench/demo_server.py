"""A `veil demo` server on a free loopback port, for the benchmarks that go through HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving(command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `command` (which takes the port as its last argument) on a free loopback port;
    yield its URL once /readyz answers, and stop it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*command, str(port)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(480):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


# Wide privacy budgets, and thresholds alone for the TPC-H tables (which hold no personal data).
OPERATOR_POLICY = ROOT / "bench" / "operator_policy"


@contextmanager
def demo_server(
    home: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield the server's URL and the demo's API keys; stop the server afterwards. `env` adds
    settings (`VEIL_*`) to the server's environment; the bench's operator module is loaded
    unless `env` names another folder."""
    command = [sys.executable, "-m", "gateway.cli", "demo", "--home", str(home), "--port"]
    env = {"VEIL_POLICY_DIR": str(OPERATOR_POLICY), **(env or {})}
    with serving(command, env) as url:
        yield url, json.loads((home / "demo-credentials.json").read_text())
