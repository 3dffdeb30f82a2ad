"""The commands `veil demo` prints work exactly as printed, from the repository's root."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support import ROOT, Server


def printed_commands(demo: Server) -> list[str]:
    """The indented commands in the demo's output, continuation lines joined."""
    port = demo.url.rsplit(":", 1)[1]
    output = (demo.home.parent / f"{demo.home.name}-demo-{port}.log").read_text()
    hints = output[output.index("Ask a first question") :]
    commands: list[str] = []
    joining = False
    for line in hints.splitlines():
        if joining:
            commands[-1] += "\n" + line
        elif line.startswith("  "):
            commands.append(line.strip())
        joining = line.endswith("\\") and bool(commands)
    return commands


def test_every_printed_command_answers(demo: Server) -> None:
    commands = printed_commands(demo)
    assert len(commands) == 4, commands
    veil = commands[1].split()[0]
    assert veil == ".venv/bin/veil" and (ROOT / veil).is_file()  # as `make demo` runs it
    env = {k: v for k, v in os.environ.items() if k not in ("VEIL_URL", "VEIL_API_KEY")}
    outputs = []
    for command in commands:
        run = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, (command, run.stdout, run.stderr)
        outputs.append(run.stdout)
    curl, assets, query, usage = outputs
    assert json.loads(curl)["columns"] == ["district", "patients", "avg_cost"]
    assert "hospital.visits" in assets and "insurance.claims" in assets
    assert "department" in query and "Surgery" in query and "receipt: ledger index" in query
    assert "released" in usage and "hospital.visits" in usage
