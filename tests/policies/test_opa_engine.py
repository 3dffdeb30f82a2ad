"""Both engines, one contract: a real `opa run --server` against the embedded engine."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from policies import EmbeddedEngine, OpaEngine
from tests.policies.conftest import INPUT
from tests.support import start_opa


@pytest.fixture(scope="module")
def opa():
    server = start_opa(operator_dir=None)  # the shipped modules alone, as the embedded engine
    yield server
    server.stop()


def _variant(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(INPUT)
    grant = document["grants"][0]
    for path, value in changes.items():
        target, key = {
            "roles": (document["principal"], "roles"),
            "principal_status": (document["principal"], "status"),
            "classification": (document["resource"]["assets"][0], "classification"),
            "asset_status": (document["resource"]["assets"][0], "status"),
            "purpose": (document["request"], "purpose"),
            "method": (document["request"], "method"),
            "grant_id": (document["request"], "grant_id"),
            "grant_status": (grant, "status"),
            "grant_purpose": (grant, "purpose"),
            "valid_until": (grant, "valid_until"),
            "valid_from": (grant, "valid_from"),
            "columns": (document["resource"], "columns"),
            "scope": (document, "scope"),
        }[path]
        target[key] = value
    return document


CORPUS = [
    _variant(**dict(zip(keys, values, strict=True)))
    for keys, options in [
        (("classification",), [("L1",), ("L2",), ("L3",), ("L4",)]),
        (("roles",), [(["developer"],), (["provider"],), ([],), (["developer", "supervisor"],)]),
        (
            ("principal_status", "asset_status"),
            [("active", "active"), ("suspended", "active"), ("active", "destroyed")],
        ),
        (
            ("purpose", "grant_purpose"),
            [
                ("public_welfare", "public_welfare"),
                ("commercial_pricing", "public_welfare"),
                (None, "commercial_pricing"),
                ("public_governance", "public_governance"),
            ],
        ),
        (("method",), [("sql",), ("job",)]),
        (("grant_id",), [(None,), ("g_abc",), ("g_other",)]),
        (("grant_status",), [("active",), ("pending",), ("revoked",), ("suspended",)]),
        (
            ("valid_from", "valid_until"),
            [
                ("2026-01-01T00:00:00Z", "2026-11-22T09:59:59Z"),
                ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
                ("2026-11-22T10:00:00+01:00", "2027-01-01T00:00:00Z"),
            ],
        ),
        (("columns",), [({"hospital.visits": ["age"]},), ({"hospital.visits": ["age", "phone"]},)]),
        (("scope",), [("query:run",), ("job:submit",), ("asset:destroy",), ("nonsense",)]),
        (("scope", "method"), [("job:submit", "job")]),
    ]
    for values in options
] + [
    _variant(classification=c, purpose=p, grant_purpose=p)
    for c, p in itertools.product(["L1", "L4"], ["public_welfare", "commercial_pricing"])
]


@pytest.mark.parametrize("document", CORPUS, ids=[f"{i:02d}" for i in range(len(CORPUS))])
def test_engines_agree(opa, engine: EmbeddedEngine, document: dict[str, Any]) -> None:
    embedded = engine.decide(document)
    served = OpaEngine(opa.url).decide(document)
    assert served == embedded


ROLE_SCOPES = [
    "catalog:read",
    "asset:register",
    "asset:destroy",
    "grant:request",
    "grant:read",
    "grant:approve",
    "grant:revoke",
    "job:read",
    "job:release",
    "ledger:read",
    "usage:read",
    "settlement:read",
    "budget:read",
    "principal:manage",
    "emergency:suspend",
    "emergency:resume",
    "policy:read",
    "policy:reload",
    "price_cap:read",
    "price_cap:set",
    "price_cap:remove",
    "product:file",
    "product:read",
    "product:withdraw",
    "registration:read",
    "registration:open",
    "registration:apply",
    "registration:attach",
    "registration:withdraw",
    "registration:review",
    "registration:re_review",
    "registration:publish",
    "registration:object",
    "registration:resolve",
    "registration:register",
    "registration:reject",
    "registration:documents",
    "report:supervision",
    "report:distribution",
]
PRINCIPALS = [
    {"id": "analyst", "roles": ["developer"], "org": "acme", "status": "active"},
    {"id": "city-hospital", "roles": ["provider"], "org": "hospital", "status": "active"},
    {"id": "insurer", "roles": ["provider", "developer"], "org": "insurer", "status": "active"},
    {"id": "supervisor", "roles": ["supervisor"], "org": "bureau", "status": "active"},
    {"id": "operator", "roles": ["operator"], "org": "platform", "status": "active"},
    {"id": "admin", "roles": ["admin"], "org": "platform", "status": "active"},
    {"id": "ops2", "roles": ["operator", "supervisor"], "org": "platform", "status": "suspended"},
]
ASSET = {
    "id": "hospital.visits",
    "classification": "L3",
    "provider": "city-hospital",
    "domain": "health",
    "status": "active",
}
GRANT = {
    "id": "g_abc",
    "developer": "analyst",
    "assets": ["hospital.visits"],
    "parties": ["city-hospital", "role:supervisor"],
    "status": "pending",
}
RESOURCES = [
    {},
    {"assets": [ASSET]},
    {"assets": [dict(ASSET, provider="insurer")]},
    {"grant": GRANT},
    {"grant": dict(GRANT, parties=["insurer"])},
    {"grant": {"developer": "analyst"}},
    {"registration": {"holder": "city-hospital", "kind": "first", "state": "draft"}},
    {"registration": {"holder": "insurer"}},
    {"holder": "city-hospital"},
    {"holder": "insurer"},
]
ROLE_CORPUS = [
    {
        "scope": scope,
        "principal": principal,
        "resource": resource,
        "request": {},
        "grants": [],
        "now": "2026-11-22T10:00:00Z",
    }
    for scope in ROLE_SCOPES
    for principal in PRINCIPALS
    for resource in RESOURCES
]


def test_engines_agree_on_every_role_scope(opa, engine: EmbeddedEngine) -> None:
    served = OpaEngine(opa.url)
    differing = [
        (document["scope"], document["principal"]["id"], document["resource"])
        for document in ROLE_CORPUS
        if served.decide(document) != engine.decide(document)
    ]
    assert differing == []
    assert {engine.decide(document).allow for document in ROLE_CORPUS} == {True, False}


TWIN_GRANT = dict(
    INPUT["grants"][0], developer="analyst", assets=["hospital.visits"], status="active"
)
TWIN_CORPUS = [
    dict(document, scope="twin:read", grants=grants)
    for document in ROLE_CORPUS
    if document["scope"] == "catalog:read"
    for grants in ([], [TWIN_GRANT], [dict(TWIN_GRANT, valid_until="2026-01-01T00:00:00Z")])
]


def test_engines_agree_on_who_reads_a_twin(opa, engine: EmbeddedEngine) -> None:
    """Grants decide a developer's twin:read, so they vary here, unlike the role corpus's."""
    served = OpaEngine(opa.url)
    differing = [doc for doc in TWIN_CORPUS if served.decide(doc) != engine.decide(doc)]
    assert differing == []
    allowed = {(doc["principal"]["id"], len(doc["grants"])) for doc in TWIN_CORPUS
               if engine.decide(doc).allow}  # fmt: skip
    assert ("analyst", 1) in allowed and ("analyst", 0) not in allowed
    assert ("city-hospital", 0) in allowed and ("admin", 0) not in allowed


def test_corpus_covers_allow_and_deny(engine: EmbeddedEngine) -> None:
    outcomes = {engine.decide(document).allow for document in CORPUS}
    assert outcomes == {True, False}


def test_unreachable_opa_denies_and_is_not_ready() -> None:
    server = start_opa()
    engine = OpaEngine(server.url, timeout_s=0.5)
    assert engine.ready() and engine.decide(copy.deepcopy(INPUT)).allow
    server.stop()
    decision = engine.decide(copy.deepcopy(INPUT))
    assert decision.allow is False and decision.reasons == ("policy_error",)
    assert engine.ready() is False
