"""Shared fixtures: a real demo server on loopback, driven over HTTP like any client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# Load DuckDB before any test imports regopy; see gateway/__init__.py.
import duckdb  # noqa: F401, I001
import pytest

from tests.support import Server, start_opa, start_server, stop_server


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("demo") / "home")
    yield server
    stop_server(server)


@pytest.fixture
def fresh_demo(tmp_path: Path) -> Iterator[Server]:
    """A demo server of its own, for tests that damage or stop it."""
    server = start_server(tmp_path / "home")
    yield server
    stop_server(server)


@pytest.fixture(scope="session", params=["embedded", "opa"])
def each_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The demo decided by each policy engine: in process, and by a real `opa run --server`."""
    if request.param == "embedded":
        yield request.getfixturevalue("demo")
        return
    opa = start_opa()
    server = start_server(
        tmp_path_factory.mktemp("opa-demo") / "home",
        env={"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url},
    )
    yield server
    stop_server(server)
    opa.stop()
