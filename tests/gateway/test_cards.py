"""Asset cards in their four parts over HTTP: the card's floor on group size holds, and every
card exports as DCAT (JSON-LD) without data."""

from __future__ import annotations

import copy
import io
import json

from tests.gateway.test_assets import CARD, _csv


def _register(server, card: dict) -> None:
    with server.client("operator") as client:
        response = client.post(
            "/v1/assets",
            data={"card": json.dumps(card)},
            files={"file": ("data.csv", io.BytesIO(_csv(400)), "text/csv")},
        )
    assert response.status_code == 201, response.json()


def _grant(server, asset: str) -> str:
    return server.grant("analyst", [asset], ["city-hospital", "supervisor"])


def test_a_cards_minimum_group_size_is_a_floor_the_policy_cannot_lower(fresh_demo) -> None:
    loose, strict = copy.deepcopy(CARD), copy.deepcopy(CARD)
    loose["id"], strict["id"] = "transport.loose", "transport.strict"
    # Thresholds answer them: no personal data, and the tests' operator module lists both.
    loose["rights"]["personal_data"] = strict["rights"]["personal_data"] = False
    strict["min_group_size"] = 25  # each line has 20 riders; the policy (L2) asks for 10
    for card in (loose, strict):
        _register(fresh_demo, card)
    answers = {}
    for asset in ("transport.loose", "transport.strict"):
        grant = _grant(fresh_demo, asset)
        sql = f"SELECT line, COUNT(*) AS trips FROM {asset} GROUP BY line"
        answers[asset] = fresh_demo.query(sql, grant_id=grant).json()
    assert len(answers["transport.loose"]["rows"]) == 3
    assert answers["transport.strict"]["rows"] == []  # the same data, held back by its card
    released = fresh_demo.ledger()
    strict_entry = next(e for e in released if e.get("assets") == ["transport.strict"]
                        and e.get("outcome") == "released")  # fmt: skip
    assert strict_entry["obligations"]["min_distinct_units"] == 25


def test_cards_export_as_dcat(demo) -> None:
    with demo.client("analyst") as client:
        one = client.get("/v1/assets/hospital.visits/dcat").json()
        whole = client.get("/v1/catalog").json()
        assert client.get("/v1/assets/no.such/dcat").status_code == 404
    assert one["@type"] == "dcat:Dataset" and "dcat" in one["@context"]
    assert one["dct:identifier"] == "hospital.visits"
    assert one["dct:rightsHolder"] == "city-hospital"
    assert one["veil:productOperationRights"] == "operator"
    # The tests' demo states that its cards hold no personal data (tests.support).
    assert one["veil:personalData"] is False
    assert one["dct:accessRights"] == "L3" and one["veil:lifecycle"] == "active"
    assert one["veil:retentionUntil"] == "2030-12-31" and one["veil:minGroupSize"] == 10
    roles = {c["veil:name"]: c["veil:role"] for c in one["veil:columns"]}
    assert roles["patient_id"] == "privacy_unit"
    assert whole["@type"] == "dcat:Catalog"
    assert "hospital.visits" in {d["dct:identifier"] for d in whole["dcat:dataset"]}
    text = json.dumps(whole)
    assert "P000042" not in text and "Lianjiang" not in text  # never data


def test_cards_are_revised_and_data_versioned_never_silently(fresh_demo) -> None:
    card = copy.deepcopy(CARD)
    _register(fresh_demo, card)
    asset = card["id"]
    with fresh_demo.client("city-hospital") as provider:
        revised = provider.put(f"/v1/assets/{asset}", json={**card, "title": "Metro trips 2024"})
        assert revised.status_code == 200, revised.json()
        assert (revised.json()["version"], revised.json()["revision"]) == (1, 2)
        moved = copy.deepcopy(card)
        moved["columns"][2]["role"] = "filter_only"
        refused = provider.put(f"/v1/assets/{asset}", json=moved)
        assert refused.status_code == 422
        assert refused.json()["error"]["violations"] == [{"rule": "columns_changed"}]
        other_id = provider.put(f"/v1/assets/{asset}", json={**card, "id": "transport.other"})
        assert other_id.status_code == 422
        newer = provider.post(
            f"/v1/assets/{asset}/versions",
            data={"card": json.dumps(card)},
            files={"file": ("v2.csv", io.BytesIO(_csv(90)), "text/csv")},
        )
        assert newer.status_code == 201, newer.json()
        assert (newer.json()["version"], newer.json()["row_count"]) == (2, 90)
        history = provider.get(f"/v1/assets/{asset}/versions").json()["items"]
    assert [(h["version"], h["revision"]) for h in history] == [(1, 1), (1, 2), (2, 1)]
    assert history[1]["card"]["title"] == "Metro trips 2024"
    with fresh_demo.client("insurer") as stranger:
        assert stranger.put(f"/v1/assets/{asset}", json=card).status_code == 403
    changes = fresh_demo.ledger()
    changes = [(e["type"], e["version"], e["revision"]) for e in changes
               if e.get("asset") == asset and e["type"].startswith("asset_")]  # fmt: skip
    assert changes == [
        ("asset_registered", 1, 1),
        ("asset_card_updated", 1, 2),
        ("asset_version_registered", 2, 1),
    ]
