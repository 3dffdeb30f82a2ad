"""The services work without an HTTP server: the demo world is set up through them, and a query
is authorised, answered under differential privacy and recorded, exactly as over the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from governance import GrantStatus, Principal, SuspensionKind
from sandbox.privacy.answer import Budget
from services import emergency, grants
from services.authorisation import assets_resource, authorise, grant_resource, target_resource
from services.demo import set_up_demo
from services.errors import Denied
from services.metrics import Metrics
from services.privacy import KEPT_QUESTIONS, _question, contribution, question
from services.queries import QueryRequest, authorise_query, run_query
from services.runtime import Services, open_services
from services.settings import Settings

BY_DISTRICT = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"


@pytest.fixture(scope="module")
def veil(tmp_path_factory) -> Iterator[Services]:
    settings = Settings(home=tmp_path_factory.mktemp("services") / "home")
    set_up_demo(settings)
    services = open_services(settings, Metrics())
    yield services
    services.close()


def _who(veil: Services, principal_id: str) -> Principal:
    found = veil.control.principal(principal_id)
    assert found is not None
    return found


def _entry(veil: Services, index: int) -> dict:
    (found,) = veil.ledger.entries(after=index - 1, limit=1)
    assert found.index == index
    return json.loads(found.data)


def _ask(veil: Services, who: str, sql: str) -> dict:
    request = QueryRequest(sql, "public_welfare", None)
    return run_query(veil, query=authorise_query(veil, caller=_who(veil, who), request=request))


def test_a_query_is_answered_privately_and_recorded(veil: Services) -> None:
    answer = _ask(veil, "analyst", BY_DISTRICT)
    assert answer["columns"] == ["district", "visits"]
    assert answer["privacy"]["mode"] == "dp" and answer["privacy"]["epsilon"] > 0
    assert sum(row[1] for row in answer["rows"]) == pytest.approx(30_000, rel=0.01)
    entry = _entry(veil, answer["receipt"]["ledger_index"])
    assert (entry["type"], entry["outcome"]) == ("query", "released")
    assert entry["query_id"] == answer["query_id"] and entry["principal"] == "analyst"
    assert entry["privacy"]["mode"] == "dp"
    spent = veil.budgets.spent(entry["at"][:7], "Provincial Public Health Institute")
    assert any(row.asset == "hospital.visits" and row.epsilon > 0 for row in spent)


def test_a_query_without_a_grant_is_denied_and_the_denial_recorded(veil: Services) -> None:
    size_before, _ = veil.ledger.head()
    with pytest.raises(Denied) as denied:
        _ask(veil, "fintech", BY_DISTRICT)  # fintech's grant covers insurance.claims only
    assert denied.value.code == "POLICY_DENIED" and denied.value.violations
    size, _ = veil.ledger.head()
    entry = _entry(veil, size - 1)
    assert size == size_before + 1
    assert (entry["type"], entry["outcome"], entry["principal"]) == ("query", "denied", "fintech")


def test_a_suspension_stops_queries_until_resumed(veil: Services) -> None:
    supervisor = _who(veil, "supervisor")
    target = target_resource("principal", "analyst")
    permit = authorise(veil, caller=supervisor, scope="emergency:suspend", resource=target)
    emergency.suspend(veil, permit=permit, kind=SuspensionKind.PRINCIPAL, target="analyst",
                      reason="drill")  # fmt: skip
    with pytest.raises(Denied):
        _ask(veil, "analyst", BY_DISTRICT)
    permit = authorise(veil, caller=supervisor, scope="emergency:resume", resource=target)
    emergency.resume(veil, permit=permit, kind=SuspensionKind.PRINCIPAL, target="analyst",
                     reason="drill over")  # fmt: skip
    assert _ask(veil, "analyst", BY_DISTRICT)["privacy"]["mode"] == "dp"


def test_a_grant_rejected_by_one_party_never_activates(veil: Services) -> None:
    fintech = _who(veil, "fintech")
    cards = {"hospital.visits": veil.enclave.store.get("hospital.visits").card}
    resource = assets_resource(veil, list(cards.values()), columns={})
    permit = authorise(veil, caller=fintech, scope="grant:request", resource=resource)
    grant = grants.request_grant(
        veil, permit=permit, cards=cards, purpose="public_welfare", scenario="a second look",
        methods=["sql"], valid_until=_a_year_on(),
    )  # fmt: skip
    hospital = _who(veil, "city-hospital")
    permit = authorise(veil, caller=hospital, scope="grant:approve", resource=grant_resource(grant))
    rejected = grants.reject_grant(veil, permit=permit, grant=grant, reason="not for fintech")
    assert rejected.status is GrantStatus.REJECTED
    history = grants.grant_with_history(veil, grant_id=grant.id)["history"]
    assert [event["event"] for event in history] == ["requested", "rejected"]
    with pytest.raises(Denied):
        _ask(veil, "fintech", BY_DISTRICT)


def _a_year_on() -> datetime:
    return datetime.now(UTC) + timedelta(days=365)


def test_policy_tests_report_a_failing_operator_test(tmp_path) -> None:
    """The operator's tests run under OPA with the shipped modules; a failing one is named."""
    from types import SimpleNamespace

    from services.policies import run_policy_tests

    (tmp_path / "mine_test.rego").write_text(
        "package veil.authz_test\n\nimport rego.v1\n\n"
        "test_holds if { 1 == 1 }\n\ntest_breaks if { 1 == 2 }\n"
    )
    veil = SimpleNamespace(settings=SimpleNamespace(policy_dir=tmp_path))
    tested = run_policy_tests(veil, permit=None)  # type: ignore[arg-type]
    assert tested.ran
    assert (tested.passed, tested.failed) == (1, ["data.veil.authz_test.test_breaks"])


def test_a_question_is_the_same_only_for_the_same_data_asker_and_terms(veil: Services) -> None:
    analysis = veil.enclave.analyse(BY_DISTRICT)
    private = veil.enclave.private(analysis, contribution(veil, analysis.assets))
    budget = Budget(1.0, 1e-7)
    key = question(veil, analysis.assets, "org-a", private, budget)
    # Worked out once per asking and kept on the plan: the same key as from scratch.
    versions = {a: [veil.enclave.store.get(a).version, veil.enclave.store.get(a).revision]
                for a in analysis.assets}  # fmt: skip
    assert key == _question(versions, "org-a", private, budget)
    assert question(veil, analysis.assets, "org-a", private, budget) == key
    assert question(veil, analysis.assets, "org-b", private, budget) != key
    assert question(veil, analysis.assets, "org-a", private, Budget(0.5, 1e-7)) != key
    assert question(veil, analysis.assets, "org-a", private, Budget(1.0, 1e-8)) != key
    newer = {asset: [version, revision + 1] for asset, (version, revision) in versions.items()}
    assert _question(newer, "org-a", private, budget) != key
    # Askings past what a plan keeps are still answered right.
    for n in range(KEPT_QUESTIONS + 3):
        org = f"org-{n}"
        assert question(veil, analysis.assets, org, private, budget) == _question(
            versions, org, private, budget
        )
