"""The gateway image holds every package: its build context, installed, serves the `veil` command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _copied() -> list[str]:
    """The paths the Dockerfile's build stage copies from the context."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY (?!--)(\S+) ", line)
        if match:
            sources.append(match.group(1))
    return sources


def test_the_image_copies_every_package_the_distribution_declares() -> None:
    declared = re.search(r"include = \[(.*?)\]", (ROOT / "pyproject.toml").read_text()).group(1)
    packages = {name.strip(' "*') for name in declared.split(",")}
    copied = set(_copied())
    assert packages <= copied, packages - copied
    kept = set((ROOT / ".dockerignore").read_text().split())
    assert {f"!{path}/" for path in copied - {"pyproject.toml"}} <= kept


def test_the_image_contents_install_and_run_the_cli(tmp_path: Path) -> None:
    """Installs exactly what the Dockerfile copies, then runs `veil --help` outside the clone."""
    context = tmp_path / "context"
    for source in _copied():
        target = context / source
        if (ROOT / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "tests")
            shutil.copytree(ROOT / source, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, target)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
    subprocess.run([*pip, "./clients/python", "."], cwd=context, check=True)
    run = "import sys; sys.path.insert(0, sys.argv.pop(1)); from gateway.cli import app; app()"
    shown = subprocess.run(
        [sys.executable, "-I", "-c", run, str(site), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    for command in ("serve", "migrate", "assets", "queries", "jobs", "ledger"):
        assert command in shown.stdout
    # Package data the server reads at run time: its Rego modules and the console's templates.
    assert list((site / "policies").glob("*.rego"))
    assert (site / "console" / "templates").is_dir()
