"""Red team of statements run on the driver (database/prepared.py) and of the answers kept
without waiting for the disk: each must fail as SQLAlchemy fails (one exception family, which
the gateway maps to 503), never bind what the caller did not give, and leave no connection
that writes spends with its commits relaxed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from database.prepared import Prepared
from governance import ControlStore
from governance.budgets import Allowance, Budgets
from governance.suspensions import SuspensionKind
from tests.database import test_prepared
from tests.database.test_prepared import ADULTS, INSERT, OF_KIND, people
from tests.gateway import test_postgres

# Fixtures: a table of people on SQLite and on PostgreSQL, and a PostgreSQL database of its own.
engine = test_prepared.engine
database_url = test_postgres.database_url

ALLOWANCE = Allowance("city.people", epsilon=10.0, delta=1e-5, cap_epsilon=12.0, cap_delta=1e-4)


def test_a_connection_the_driver_closed_fails_as_sqlalchemy_fails(engine: sa.Engine) -> None:
    """A driver connection closed under a checked-out connection (a session the server or the
    driver gave up on) raises SQLAlchemy's DBAPIError, marked invalidated, as a statement run
    through SQLAlchemy does, never the driver's own exception (which the gateway would answer
    as 500 INTERNAL rather than 503 STORE_UNAVAILABLE); and the pool then serves a live one."""
    with engine.connect() as db:
        db.connection.dbapi_connection.close()
        with pytest.raises(sa.exc.DBAPIError) as through_sqlalchemy:
            db.execute(ADULTS)
    assert through_sqlalchemy.value.connection_invalidated
    with engine.connect() as db:
        db.connection.dbapi_connection.close()
        with pytest.raises(sa.exc.DBAPIError) as prepared:
            Prepared(ADULTS).scalars(db)
    assert prepared.value.connection_invalidated
    assert isinstance(prepared.value, type(through_sqlalchemy.value))
    with engine.connect() as db:
        assert Prepared(ADULTS).scalars(db) == ["ann", "cy"]


@pytest.mark.parametrize(
    ("statement", "given"),
    [(OF_KIND, {}), (INSERT, {"id": "fi"}), (INSERT, {"kind": "child"})],
    ids=["read", "insert-without-kind", "insert-without-id"],
)
def test_a_parameter_not_given_is_refused_not_bound_as_null(
    engine: sa.Engine, statement: sa.Executable, given: dict[str, str]
) -> None:
    """SQLAlchemy refuses a statement missing a value for a bound parameter; a prepared one
    must not quietly bind NULL instead (a key, a grant or a spender that matches nothing, or
    a row written with a hole in it)."""
    with engine.connect() as db:
        with pytest.raises(sa.exc.StatementError):
            db.execute(statement, given)
        db.rollback()
        with pytest.raises(sa.exc.StatementError) as refused:
            Prepared(statement).run(db, given)
        db.rollback()
    assert "A value is required for bind parameter" in str(refused.value)
    with engine.connect() as db:
        assert len(Prepared(ADULTS).scalars(db)) == 2  # nothing was written


def test_a_statement_that_sqlalchemy_renders_per_run_is_refused_at_once(
    engine: sa.Engine,
) -> None:
    """An expanding IN is rendered again on each run: compiled once, its placeholder would
    reach the driver as text. Prepared refuses such a statement rather than send it."""
    kinds = sa.bindparam("kinds", expanding=True)
    expanding = sa.select(people.c.id).where(people.c.kind.in_(kinds))
    with engine.connect() as db, pytest.raises(sa.exc.ArgumentError):
        Prepared(expanding).all(db, {"kinds": ["adult"]})


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ControlStore]:
    url = (
        f"sqlite:///{tmp_path / 'control.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("database_url")
    )
    store = ControlStore(url)
    yield store
    store.engine.dispose()


def test_in_force_over_no_assets_answers_for_the_principal_and_grant(
    control: ControlStore,
) -> None:
    """in_force with no asset (nothing to be suspended) is compiled as an empty IN, which
    SQLAlchemy renders per run; compiled once it must still answer, from the principal's and
    the grant's status alone."""
    control.create_principal("dev", {"developer"}, "lab")
    assert control.in_force("dev", None, [])
    assert not control.in_force("nobody", None, [])
    control.suspend(SuspensionKind.PRINCIPAL, "dev", "red team", "operator")
    assert not control.in_force("dev", None, [])


def test_an_answer_kept_unsynced_leaves_the_next_transaction_waiting(database_url: str) -> None:
    """PostgreSQL: the answer's `SET LOCAL synchronous_commit TO OFF` ends with its
    transaction; the next transaction on the same pooled connection (a reservation, say)
    waits for the disk again."""
    ControlStore(database_url).engine.dispose()
    pooled = sa.create_engine(database_url, pool_size=1, max_overflow=0)
    budgets = Budgets(pooled, 60)
    asked = {"org": "lab", "query_id": "q_1", "period": "2026-12", "allowances": [ALLOWANCE],
             "epsilon": 0.5, "delta": 1e-7}  # fmt: skip
    assert budgets.ask(question="kept", **asked).answer is None
    with pooled.connect() as db:
        pid = db.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    budgets.answered("kept", '{"rows": [[1]]}')
    with pooled.begin() as db:
        assert db.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid  # the same one
        assert db.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    assert budgets.ask(question="kept", **asked).answer == '{"rows": [[1]]}'
    pooled.dispose()
