"""The Python client against the live demo: typed answers, typed refusals, jobs, conversions."""

from __future__ import annotations

import pytest
from veil_client import (
    Conflict,
    Denied,
    NotFound,
    Rejected,
    Result,
    Unauthenticated,
    Veil,
)
from veil_client.models import Asset, Grant

from tests.client.onboarding import BY_DISTRICT_JOB, VISITS_BY_DISTRICT, Developer, onboard
from tests.support import Server


@pytest.fixture(scope="module")
def developer(demo: Server) -> Developer:
    return onboard(demo, "client-dev")


def test_catalogue_and_grants_come_back_typed(demo: Server, developer: Developer) -> None:
    with Veil(demo.url, developer.key) as veil:
        assets = {asset.id: asset for asset in veil.assets.list()}
        visits = veil.assets.get("hospital.visits")
        grants = veil.grants.list()
        grant = veil.grants.get(developer.grant)
    assert isinstance(visits, Asset) and visits == assets["hospital.visits"]
    assert {column.name: column.role for column in visits.columns}["patient_id"] == "privacy_unit"
    assert visits.row_count == 30000 and visits.lifecycle == "active"
    assert [g.id for g in grants] == [developer.grant] and isinstance(grants[0], Grant)
    assert grant.status == "active" and grant.developer == developer.id
    assert [event.event for event in grant.history][0] == "requested"
    assert "activated" in [event.event for event in grant.history]
    with Veil(demo.url, demo.keys["city-hospital"]) as provider:
        versions = provider.assets.versions("hospital.visits")
    assert versions[0].version == 1 and versions[0].card["id"] == "hospital.visits"


def test_a_query_is_a_result_with_its_receipt_and_converts(demo: Server, developer: Developer):
    with Veil(demo.url, developer.key) as veil:
        result = veil.queries.run(VISITS_BY_DISTRICT, grant_id=developer.grant)
    assert isinstance(result, Result) and result.columns == ["district", "patients"]
    assert len(result.rows) == 8 and result.query_id.startswith("q_")
    assert result.cost.amount_minor == 0 and result.receipt.ledger_index > 0
    frame = result.to_pandas()
    assert list(frame.columns) == ["district", "patients"] and len(frame) == 8
    assert int(frame["patients"].sum()) == sum(row[1] for row in result.rows)
    table = result.to_arrow()
    assert table.column_names == ["district", "patients"] and table.num_rows == 8
    assert table.column("district").to_pylist() == [row[0] for row in result.rows]


def test_refusals_raise_their_own_exceptions(demo: Server, developer: Developer) -> None:
    with Veil(demo.url, "veil_not-a-key") as stranger, pytest.raises(Unauthenticated) as raised:
        stranger.assets.list()
    assert raised.value.status == 401 and raised.value.code == "UNAUTHENTICATED"
    with Veil(demo.url, developer.key) as veil:
        with pytest.raises(Rejected) as rejected:
            veil.queries.run("SELECT patient_name FROM hospital.visits")
        assert rejected.value.code == "QUERY_REJECTED" and rejected.value.status == 422
        rules = {(v.rule, v.column) for v in rejected.value.violations}
        assert ("identifier_column", "patient_name") in rules
        with pytest.raises(NotFound):
            veil.assets.get("nope.none")
        with pytest.raises(Denied) as denied:
            veil.emergency.suspend(principal="analyst", reason="not mine to stop")
        assert denied.value.code == "POLICY_DENIED"
        with pytest.raises(ValueError, match="exactly one"):
            veil.emergency.suspend(principal="analyst", grant=developer.grant, reason="two")


def test_a_job_is_followed_to_its_end(demo: Server, developer: Developer, capsys) -> None:
    with Veil(demo.url, developer.key) as veil:
        job = veil.jobs.submit(BY_DISTRICT_JOB, grant_id=developer.grant)
        assert job.id.startswith("j_") and job.status == "queued"
        record = job.wait(progress=True, timeout=120, interval=0.2)
        assert [j.id for j in veil.jobs.list()] == [job.id]
        with pytest.raises(Conflict):
            job.cancel()  # it has ended
    assert record.status == "succeeded", record.error
    assert record.outputs is not None and len(record.outputs["by_district"].rows) == 8
    assert f"job {job.id}: succeeded" in capsys.readouterr().err


def test_a_missing_extra_says_what_to_install(monkeypatch) -> None:
    import sys

    result = Result.model_validate(
        {
            "query_id": "q_1",
            "columns": ["n"],
            "rows": [[1]],
            "cost": {"amount_minor": 0},
            "receipt": {"ledger_index": 1, "leaf_hash": "00" * 32},
        }
    )
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'veil-client\[pandas\]'"):
        result.to_pandas()
