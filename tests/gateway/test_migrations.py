"""The control store's Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.control import ControlStore, metadata


def test_migrations_match_the_tables(tmp_path) -> None:
    store = ControlStore(f"sqlite:///{tmp_path / 'control.db'}")
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert differences == []
    assert version == "0001"


def test_migrating_twice_is_harmless(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    first = ControlStore(url)
    key = first.create_principal("someone", {"developer"}, "Org")
    second = ControlStore(url)
    principal = second.authenticate(key)
    assert principal is not None and principal.id == "someone"
