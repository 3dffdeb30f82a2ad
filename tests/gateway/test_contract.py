"""The HTTP API keeps its OpenAPI contract: schemathesis drives every route of the live demo as
each demo role, and every answer must be documented, in its documented shape and media type."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.errors import FailureGroup

from tests.support import DEMO_ASSETS, Server

ROLES = ["admin", "operator", "supervisor", "city-hospital", "insurer", "analyst", "fintech"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
# Left out of this run on the shared demo, which later tests need whole: they destroy an
# asset, change or end a principal's key, end a grant, stop things or swap the policy.
DESTRUCTIVE = {
    ("DELETE", "/v1/assets/{asset_id}"),
    ("POST", "/v1/principals/{principal_id}/rotate-key"),
    ("POST", "/v1/principals/{principal_id}/revoke"),
    ("POST", "/v1/grants/{grant_id}/revoke"),
    ("POST", "/v1/emergency/suspend"),
    ("POST", "/v1/emergency/resume"),
    ("POST", "/v1/policies/reload"),
    # A cap would have the policy refuse paid queries: tests/gateway/test_price_caps.py runs
    # these two on their own and lifts what they set.
    ("PUT", "/v1/price-caps"),
    ("DELETE", "/v1/price-caps"),
}
# Per operation: a few derandomised examples, the first failure reported as found.
BOUNDED = settings(
    max_examples=5,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def document(demo: Server) -> dict:
    return httpx.get(f"{demo.url}/openapi.json", timeout=30).raise_for_status().json()


@pytest.fixture(scope="module")
def known(demo: Server) -> dict[str, st.SearchStrategy[str]]:
    """Ids that exist in the demo, so that reads reach their answers and not only 404s."""
    with demo.client("supervisor") as client:
        grant_ids = [grant["id"] for grant in client.get("/v1/grants").json()["items"]]
    return {
        "asset_id": st.sampled_from(sorted(DEMO_ASSETS)),
        "grant_id": st.sampled_from(grant_ids),
        "principal_id": st.sampled_from(ROLES),
    }


def _cases(
    operation: schemathesis.APIOperation, known: dict[str, st.SearchStrategy[str]]
) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests as the document describes them; reads also name real ids."""
    generated = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    names = {parameter.name for parameter in operation.path_parameters}
    if operation.method.upper() == "GET" and names and names <= known.keys():
        ids = st.fixed_dictionaries({name: known[name] for name in names})
        generated.append(ids.flatmap(lambda chosen: operation.as_strategy(path_parameters=chosen)))
    return st.one_of(generated)


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_is_documented(
    demo: Server, document: dict, known: dict[str, st.SearchStrategy[str]], role: str
) -> None:
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=demo.url, headers={"Authorization": f"Bearer {demo.keys[role]}"})
    findings = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in DESTRUCTIVE:
            continue

        @BOUNDED
        @given(case=_cases(operation, known))
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            answers_as_documented()
        except FailureGroup as found:
            findings.append(f"{operation.label}: {found}")
    assert not findings, "\n\n".join(findings)
