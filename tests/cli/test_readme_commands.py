"""The README's first-query commands work as printed: run by the shell from a directory laid
out as the repository after `make demo` (its .venv and .veil), against a live demo server."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.support import ROOT, Server

README = (ROOT / "README.md").read_text()
DEMO_ADDRESS = "127.0.0.1:8000"


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _run(command: str, server: Server, where: Path) -> dict:
    """`command` through sh, at `where`, pointed at the test's server instead of port 8000
    (in the text, and as the CLI's default address)."""
    command = command.replace(DEMO_ADDRESS, server.url.removeprefix("http://"))
    env = {**os.environ, "VEIL_URL": server.url}
    env.pop("VEIL_API_KEY", None)
    done = subprocess.run(
        ["sh", "-c", command], cwd=where, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (command, done.stderr[-2000:])
    return json.loads(done.stdout)


def test_the_first_query_commands_run_as_printed(demo: Server, tmp_path: Path) -> None:
    (tmp_path / ".veil").symlink_to(demo.home)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    asking = _section("Ask a question")
    curl_block = re.search(r"```sh\n(.*?)```", asking, re.S).group(1)
    answer = _run(curl_block, demo, tmp_path)
    assert answer["columns"] == ["district", "patients", "avg_cost"] and answer["rows"]
    assert answer["receipt"]["ledger_index"] >= 0
    key_line = curl_block.splitlines()[0]
    cli = re.search(r"Or with the CLI: `([^`]+)`", asking).group(1)
    answer = _run(f"{key_line}\n{cli}", demo, tmp_path)
    assert answer["columns"] == ["plan", "n"] and answer["rows"]
