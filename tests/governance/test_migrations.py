"""The control store's Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from governance import SUPERVISOR_PARTY, ControlStore, metadata, migrate
from governance.budgets import privacy_spends, private_answers
from governance.job_records import jobs
from governance.tables import data_products

# The jobs, budget and product tables are declared beside their code, on the control store's
# metadata.
assert jobs.metadata is privacy_spends.metadata is private_answers.metadata is metadata
assert data_products.metadata is metadata


def test_migrations_match_the_tables(tmp_path) -> None:
    store = ControlStore(f"sqlite:///{tmp_path / 'control.db'}")
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert differences == []
    assert version == "0013"


def test_migrating_twice_is_harmless(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    first = ControlStore(url)
    key = first.create_principal("someone", {"developer"}, "Org")
    second = ControlStore(url)
    principal = second.authenticate(key)
    assert principal is not None and principal.id == "someone"


def test_supervisor_party_is_renamed_where_no_principal_id_can_reach_it(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    migrate(engine, "0001")
    body = {
        "developer": "dev",
        "assets": ["a.b"],
        "purpose": "p",
        "methods": ["sql"],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "required_parties": ["prov", "supervisor"],
    }
    with engine.begin() as db:
        db.execute(
            sa.text("INSERT INTO grants VALUES ('g_1', 'dev', :body, 'pending', 'now')"),
            {"body": json.dumps(body)},
        )
        db.execute(
            sa.text("INSERT INTO grant_approvals VALUES ('g_1', 'supervisor', 'sup', 'now')")
        )
    store = ControlStore(str(engine.url))
    grant = store.grant("g_1")
    assert grant.required_parties == ["prov", SUPERVISOR_PARTY]
    assert grant.approvals == [SUPERVISOR_PARTY]
    assert store.approve("g_1", "prov", "prov").status.value == "active"
    # Grants made before the history began start it with their request.
    assert [e["event"] for e in store.history("g_1")] == ["requested", "approved", "activated"]
