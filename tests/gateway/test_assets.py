"""Registering assets over HTTP: good and bad cards and files; nothing half-registered remains."""

from __future__ import annotations

import copy
import io
import json

import pytest

from sandbox.cards import parse_card

CARD = {
    "id": "transport.trips",
    "title": "Metro trips",
    "provider": "city-hospital",
    "classification": "L2",
    "domain": "transport",
    "rights": {"holder": "city-hospital", "personal_data": True},
    "columns": [
        {"name": "rider_id", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "card_no", "type": "VARCHAR", "role": "identifier"},
        {"name": "line", "type": "VARCHAR", "role": "dimension"},
        {"name": "day", "type": "DATE", "role": "dimension"},
        {"name": "fare", "type": "DECIMAL(6,2)", "role": "measure", "bounds": [0, 20]},
    ],
    "revenue_shares_bp": {"city-hospital": 8000, "operator": 2000},
}


def _csv(rows: int = 50, bad_row: str | None = None) -> bytes:
    lines = ["rider_id,card_no,line,day,fare"]
    lines += [f"R{i % 20},C{i},L{i % 3},2024-01-{i % 28 + 1:02d},{i % 9}.50" for i in range(rows)]
    if bad_row:
        lines.append(bad_row)
    return ("\n".join(lines) + "\n").encode()


def _register(demo, card: dict | str, content: bytes, who: str = "operator"):
    with demo.client(who) as client:
        return client.post(
            "/v1/assets",
            data={"card": card if isinstance(card, str) else json.dumps(card)},
            files={"file": ("data.csv", io.BytesIO(content), "text/csv")},
        )


def _nothing_left(demo, asset_id: str) -> None:
    with demo.client("operator") as client:
        assert client.get(f"/v1/assets/{asset_id}").status_code == 404
    leftovers = [p.name for p in (demo.home / "assets").iterdir()]
    assert asset_id not in leftovers
    assert not [name for name in leftovers if name.startswith(".staging")]
    assert not (demo.home / "keys" / "assets" / f"{asset_id}.wrapped").exists()


def _variant(asset_id: str, change) -> dict:
    card = copy.deepcopy(CARD)
    card["id"] = asset_id
    change(card)
    return card


BAD_CARDS = {
    "group_size_of_one": lambda c: c.update(min_group_size=1),
    "bad_purpose": lambda c: c.update(purposes=["Not A Purpose"]),
    "bad_retention_date": lambda c: c.update(retention_until="someday"),
    "personal_data_not_a_flag": lambda c: c["rights"].update(personal_data="maybe"),
    "empty_steward": lambda c: c.update(stewards=[""]),
    "unknown_role": lambda c: c["columns"][2].update(role="secret"),
    "two_roles": lambda c: c["columns"][2].update(role=["dimension", "measure"]),
    "no_role": lambda c: c["columns"][2].pop("role"),
    "no_privacy_unit": lambda c: c["columns"][0].update(role="dimension"),
    "measure_without_bounds": lambda c: c["columns"][4].pop("bounds"),
    "text_measure": lambda c: c["columns"][2].update(role="measure", bounds=[0, 1]),
    "bad_type": lambda c: c["columns"][2].update(type="BLOB"),
    "shares_not_10000": lambda c: c.update(revenue_shares_bp={"city-hospital": 9000}),
    "bad_id": lambda c: c.update(id="Transport.Trips"),
    "bad_classification": lambda c: c.update(classification="L9"),
    "duplicate_column": lambda c: c["columns"].append(dict(c["columns"][2])),
    "reserved_column": lambda c: c["columns"][2].update(name="veil_units"),
    "extra_field": lambda c: c.update(secret=True),
    "infinite_bounds": lambda c: c["columns"][4].update(bounds=[0, float("inf")]),
    "nan_bounds": lambda c: c["columns"][4].update(bounds=[float("nan"), 1]),
    "bounds_beyond_type": lambda c: c["columns"][4].update(bounds=[0, 1e9]),
    "negative_price": lambda c: c.update(pricing={"per_query_minor": -1}),
    "fractional_price": lambda c: c.update(pricing={"per_cpu_second_minor": 0.5}),
    "priced_free_plan": lambda c: c.update(pricing={"plans": {"free": {"per_query_minor": 1}}}),
    "bad_plan_name": lambda c: c.update(pricing={"plans": {"Gold Plan": {}}}),
    "falling_tiers": lambda c: c.update(
        pricing={
            "row_tiers": [
                {"above_rows": 500, "per_1k_rows_scanned_minor": 1},
                {"above_rows": 100, "per_1k_rows_scanned_minor": 0},
            ]
        }
    ),  # fmt: skip
    "zero_tier": lambda c: c.update(
        pricing={"row_tiers": [{"above_rows": 0, "per_1k_rows_scanned_minor": 1}]}
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_CARDS))
def test_bad_cards_are_refused(demo, name: str) -> None:
    asset_id = f"badcard.{name}"
    card = _variant(asset_id, BAD_CARDS[name])
    response = _register(demo, card, _csv())
    body = response.json()
    assert response.status_code == 422, body
    assert body["error"]["code"] == "CARD_INVALID"
    assert body["error"]["violations"]
    _nothing_left(demo, card["id"])


def test_a_new_card_must_say_whether_it_holds_personal_data(demo) -> None:
    """Silence is not "no personal data": a new card that does not say is refused, and one
    stored before the rule is read as personal."""
    card = _variant("transport.unsaid", lambda c: c["rights"].pop("personal_data"))
    response = _register(demo, card, _csv())
    assert response.status_code == 422, response.json()
    assert response.json()["error"]["violations"] == [
        {"rule": "personal_data_required", "column": "rights.personal_data"}
    ]
    _nothing_left(demo, card["id"])
    for stated in (True, False):
        said = _variant(f"transport.said_{str(stated).lower()}",
                        lambda c, stated=stated: c["rights"].update(personal_data=stated))  # fmt: skip
        assert _register(demo, said, _csv()).status_code == 201
        with demo.client("analyst") as client:
            shown = client.get(f"/v1/assets/{said['id']}").json()
        assert shown["rights"]["personal_data"] is stated
    unsaid = {k: v for k, v in CARD.items() if k != "rights"}
    assert parse_card({**unsaid, "rights": {"holder": "city-hospital"}}).rights.personal_data


def test_card_that_is_not_json(demo) -> None:
    response = _register(demo, "{not json", _csv())
    assert response.status_code == 422 and response.json()["error"]["code"] == "CARD_INVALID"


BAD_FILES = {
    "type_mismatch": (_csv(bad_row="R1,C9,L1,2024-02-30,1.00"), "type_mismatch", "day"),
    "text_in_number": (_csv(bad_row="R1,C9,L1,2024-02-03,lots"), "type_mismatch", "fare"),
    "missing_column": (
        b"rider_id,card_no,line,day\nR1,C1,L1,2024-01-01\n",
        "column_missing",
        "fare",
    ),
    "extra_column": (
        b"rider_id,card_no,line,day,fare,x\nR1,C1,L1,2024-01-01,1.0,9\n",
        "column_not_in_card",
        "x",
    ),
    "header_only": (b"rider_id,card_no,line,day,fare\n", "file_empty", None),
    "binary_garbage": (bytes(range(256)) * 40, None, None),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_refused(demo, name: str) -> None:
    content, rule, column = BAD_FILES[name]
    asset_id = f"badfile.{name}"
    response = _register(demo, _variant(asset_id, lambda c: None), content)
    body = response.json()
    assert response.status_code == 422, body
    assert body["error"]["code"] == "FILE_INVALID"
    if rule:
        assert {"rule": rule, "column": column} in body["error"]["violations"] or (
            column is None and rule in {v["rule"] for v in body["error"]["violations"]}
        )
    _nothing_left(demo, asset_id)


def test_register_csv_then_parquet_then_query(demo, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    response = _register(demo, CARD, _csv(400))
    assert response.status_code == 201, response.json()
    assert response.json()["row_count"] == 400
    assert _register(demo, CARD, _csv()).status_code == 409

    table = pa.table(
        {
            "rider_id": [f"R{i % 30}" for i in range(300)],
            "card_no": [f"C{i}" for i in range(300)],
            "line": [f"L{i % 2}" for i in range(300)],
            "day": pa.array([__import__("datetime").date(2024, 1, 1)] * 300),
            "fare": [float(i % 7) for i in range(300)],
        }
    )
    path = tmp_path / "trips.parquet"
    pq.write_table(table, path)
    card = _variant("transport.trips_pq", lambda c: None)
    response = _register(demo, card, path.read_bytes())
    assert response.status_code == 201, response.json()
    assert response.json()["row_count"] == 300


def test_providers_register_only_their_own(demo) -> None:
    card = _variant("transport.other", lambda c: c.update(provider="insurer"))
    response = _register(demo, card, _csv(), who="city-hospital")
    assert response.status_code == 403
    assert _register(demo, card, _csv(), who="analyst").status_code == 403
    _nothing_left(demo, "transport.other")


def test_stored_files_are_encrypted(demo) -> None:
    data = (demo.home / "assets" / "hospital.visits" / "data.duckdb").read_bytes()
    for plain in (b"Lianjiang", b"P000042", b"Internal Medicine"):
        assert plain not in data
    # The wrapped data key lives in the keyring, apart from the data a backup would copy.
    assert not (demo.home / "assets" / "hospital.visits" / "key.wrapped").exists()
    wrapped = demo.home / "keys" / "assets" / "hospital.visits.wrapped"
    assert len(wrapped.read_bytes()) == 12 + 32 + 16
    assert oct(wrapped.stat().st_mode)[-3:] == "600"
