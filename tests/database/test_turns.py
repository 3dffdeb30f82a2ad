"""Writers of one SQLite file take its turn, a kernel lock beside it, around their write: the
ledger's appends and the privacy budgets' reservations hold it while they write, and a turn
that cannot be taken leaves SQLite's own lock to order the write."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from database.turns import prepare_turn, turn_path, writers_turn
from governance.budgets import Allowance, Budgets
from governance.store import ControlStore
from ledger import Ledger, generate_signing_key


def _held(path: str) -> bool:
    """Whether another open file of `path` holds its lock (this one cannot take it now)."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _watch(engine: sa.Engine, kinds: tuple[str, ...]) -> dict[str, bool]:
    """Whether the turn was held at every statement of each kind run on `engine` from now,
    as SQLite's own trace of its connections sees them."""
    found: dict[str, bool] = {}
    path = turn_path(engine)
    assert path is not None

    @sa.event.listens_for(engine, "connect")
    def _trace(connection: sqlite3.Connection, _record: object) -> None:
        def statement(sql: str) -> None:
            for kind in kinds:
                if sql.lstrip().upper().startswith(kind):
                    found[kind] = found.get(kind, True) and _held(path)

        connection.set_trace_callback(statement)

    engine.dispose()  # connections opened from now on are traced
    return found


def test_the_turn_is_held_inside_its_block_and_let_go_after(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    prepare_turn(engine)
    path = turn_path(engine)
    assert path == str(tmp_path / "turns.db.writer") and Path(path).exists()
    with writers_turn(engine):
        assert _held(path)
    assert not _held(path)
    with pytest.raises(RuntimeError), writers_turn(engine):
        raise RuntimeError("a write that fails lets the turn go too")
    assert not _held(path)


def test_only_sqlite_files_have_a_turn(tmp_path: Path) -> None:
    assert turn_path(sa.create_engine("sqlite://")) is None
    assert turn_path(sa.create_engine("postgresql+psycopg://veil@localhost/veil")) is None
    with writers_turn(sa.create_engine("sqlite://")):
        pass


def test_a_ledger_append_writes_inside_the_turn(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "ledger.key")
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "ledger.key")
    seen = _watch(ledger._engine, ("INSERT", "COMMIT"))
    ledger.append({"type": "test", "n": 1}, "one")
    ledger.append({"type": "test", "n": 2}, "two")
    assert seen == {"INSERT": True, "COMMIT": True}
    assert not _held(str(tmp_path / "ledger.db.writer"))
    ledger.close()


def test_a_budget_reservation_writes_inside_the_turn(tmp_path: Path) -> None:
    control = ControlStore(f"sqlite:///{tmp_path / 'control.db'}")
    budgets = Budgets(control.engine, stale_after_s=30)
    seen = _watch(control.engine, ("INSERT", "UPDATE", "COMMIT"))
    allowance = Allowance("a.b", epsilon=10, delta=1e-5, cap_epsilon=10, cap_delta=1e-5)
    asked = budgets.ask(
        question="q", org="org", query_id="q1", period="2026-12",
        allowances=[allowance], epsilon=1.0, delta=1e-7,
    )  # fmt: skip
    assert asked.answer is None
    assert seen == {"INSERT": True, "UPDATE": True, "COMMIT": True}
    budgets.close()


def test_a_writer_that_cannot_take_the_turn_writes_without_it(tmp_path: Path) -> None:
    (tmp_path / "ledger.db.writer").mkdir()  # no file to lock there
    generate_signing_key(tmp_path / "ledger.key")
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "ledger.key")
    first = ledger.append({"type": "test", "n": 1}, "one")
    assert ledger.append({"type": "test", "n": 2}, "two").index == first.index + 1
    assert ledger.verify().ok
    ledger.close()
