"""A control store on each backend the tests run against: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from governance import ControlStore
from tests.gateway.test_postgres import database_url  # noqa: F401 - a fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'control.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("database_url")
    )
    store = ControlStore(url)
    yield store
    store.engine.dispose()
