"""A statement that fails names no value it was given: errors reach logs, and the values a
store binds include API key hashes and ledger entries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger.store import create_store

SECRET = "k_" + "7" * 24


def _fails_with(engine: sa.Engine) -> str:
    with pytest.raises(sa.exc.DBAPIError) as failed, engine.begin() as db:
        db.execute(sa.text("INSERT INTO no_such_table (id) VALUES (:v)"), {"v": SECRET})
    return str(failed.value)


def test_the_control_store_hides_bound_values(store) -> None:
    assert SECRET not in _fails_with(store.engine)


def test_the_ledger_store_hides_bound_values(tmp_path) -> None:
    engine = create_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert SECRET not in _fails_with(engine)
    finally:
        engine.dispose()
