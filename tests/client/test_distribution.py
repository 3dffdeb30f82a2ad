"""The client is its own distribution: it imports none of the server's packages."""

from __future__ import annotations

import ast
from pathlib import Path

import veil_client

SERVER = {"gateway", "console", "services", "governance", "sandbox", "ledger", "policies"}


def test_the_client_imports_nothing_of_the_server() -> None:
    package = Path(veil_client.__file__).parent
    imported = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert "veil_client" in imported and "httpx" in imported
    assert not imported & SERVER
