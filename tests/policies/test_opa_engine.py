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
    server = start_opa()
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
        (("scope",), [("query:run",), ("asset:destroy",), ("nonsense",)]),
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
