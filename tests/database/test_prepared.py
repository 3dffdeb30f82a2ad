"""Statements run on the driver answer as SQLAlchemy would, and fail as it would: the same
exception classes, and a lost connection invalidated so the pool hands out a live one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from database.prepared import Prepared
from tests.ledger.stores import POSTGRES_URL, _own_database

metadata = sa.MetaData()
people = sa.Table(
    f"prepared_people_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("visits", sa.BigInteger, nullable=False),
)
OF_KIND = sa.select(people.c.id, people.c.visits).where(people.c.kind == sa.bindparam("kind"))
# A literal is a bound value with a default: it must reach the driver too.
ADULTS = sa.select(people.c.id).where(people.c.kind == "adult").order_by(people.c.id)
INSERT = people.insert().values(id=sa.bindparam("id"), kind=sa.bindparam("kind"), visits=0)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prepared.db'}"
    elif POSTGRES_URL:
        url = _own_database(POSTGRES_URL)
    elif os.environ.get("CI"):
        pytest.fail("VEIL_TEST_POSTGRES_URL is not set; run the tests with `make test`")
    else:
        pytest.skip("set VEIL_TEST_POSTGRES_URL (make test does) to run against PostgreSQL")
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as db:
        db.execute(
            people.insert(),
            [
                {"id": "ann", "kind": "adult", "visits": 3},
                {"id": "bo", "kind": "child", "visits": 1},
                {"id": "cy", "kind": "adult", "visits": 7},
            ],
        )
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def test_rows_are_what_sqlalchemy_returns(engine: sa.Engine) -> None:
    with engine.connect() as db:
        expected = [tuple(row) for row in db.execute(OF_KIND, {"kind": "adult"})]
        rows = Prepared(OF_KIND).all(db, {"kind": "adult"})
        assert sorted(rows) == sorted(expected) == [("ann", 3), ("cy", 7)]
        assert {row.id: row.visits for row in rows} == {"ann": 3, "cy": 7}
        assert Prepared(ADULTS).scalars(db) == ["ann", "cy"]
        assert Prepared(OF_KIND).first(db, {"kind": "nobody"}) is None


def test_writes_commit_with_the_transaction_they_ran_in(engine: sa.Engine) -> None:
    insert = Prepared(INSERT)
    with engine.begin() as db:
        assert insert.run(db, {"id": "di", "kind": "child"}) == 1
    with engine.connect() as db:
        db.begin()
        insert.run(db, {"id": "ed", "kind": "child"})
        db.rollback()
    with engine.connect() as db:
        assert sorted(Prepared(OF_KIND).all(db, {"kind": "child"})) == [("bo", 1), ("di", 0)]


def test_a_driver_error_is_sqlalchemys_exception_without_the_values(engine: sa.Engine) -> None:
    with engine.connect() as db, pytest.raises(sa.exc.IntegrityError) as raised:
        Prepared(INSERT).run(db, {"id": "ann", "kind": "secret-kind"})
    assert "secret-kind" not in str(raised.value)
    with engine.connect() as db:  # the pool's connection still serves
        assert Prepared(ADULTS).scalars(db) == ["ann", "cy"]


# Only a server can drop a session.
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_lost_connection_is_invalidated_and_the_next_one_serves(engine: sa.Engine) -> None:
    with engine.connect() as db:
        pid = db.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    killer = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with killer.connect() as other:
        other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    with engine.connect() as db, pytest.raises(sa.exc.DBAPIError) as raised:
        Prepared(ADULTS).scalars(db)
    assert raised.value.connection_invalidated
    with engine.connect() as db:
        assert Prepared(ADULTS).scalars(db) == ["ann", "cy"]
