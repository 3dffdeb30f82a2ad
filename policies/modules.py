"""The Rego modules every engine loads: the shipped ones, then an operator's directory."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .engine import PolicyInvalid

DECISION_ENTRYPOINT = "veil/authz/decision"

Module = tuple[str, str]


def policy_modules(extra_dir: Path | None = None) -> list[Module]:
    """(name, source) of every policy module, test modules excluded."""
    modules = shipped_modules()
    if extra_dir is not None:
        modules += operator_modules(extra_dir)
    return modules


def shipped_modules() -> list[Module]:
    root = resources.files(__package__)
    return [
        (f"policies/{entry.name}", entry.read_text(encoding="utf-8"))
        for entry in sorted(root.iterdir(), key=lambda entry: entry.name)
        if _is_policy(entry.name)
    ]


def operator_modules(extra_dir: Path) -> list[Module]:
    """Modules under extra_dir, recursively, as OPA loads a directory."""
    if not extra_dir.is_dir():
        raise PolicyInvalid(f"policy directory {extra_dir} does not exist")
    try:
        return [
            (str(path), path.read_text(encoding="utf-8"))
            for path in sorted(extra_dir.rglob("*.rego"))
            if path.is_file() and _is_policy(path.name)
        ]
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyInvalid(f"cannot read the policy modules in {extra_dir}") from exc


def _is_policy(name: str) -> bool:
    return name.endswith(".rego") and not name.endswith("_test.rego")
