"""The layers hold: gateway above services above four independent domains, HTTP only on top.

The contracts live in pyproject.toml and are checked by import-linter over the real imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_layer_contracts_are_kept() -> None:
    checked = _lint(ROOT / "pyproject.toml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "3 kept, 0 broken" in checked.stdout


def test_a_reversed_layering_is_caught(tmp_path: Path) -> None:
    """The checker sees the real imports: services beneath the gateway breaks this contract."""
    config = tmp_path / "reversed.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["gateway", "services"]\n\n'
        '[[tool.importlinter.contracts]]\nid = "reversed"\nname = "reversed"\n'
        'type = "layers"\nlayers = ["services", "gateway"]\n'
    )
    checked = _lint(config)
    assert checked.returncode != 0
    assert "gateway.app -> services" in checked.stdout or "gateway." in checked.stdout
