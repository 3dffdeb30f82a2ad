"""Synthetic twins over HTTP: a granted developer downloads CSV and Parquet, others are refused,
and the provider's ε is spent once per data version, recorded, and kept sealed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count

import duckdb
import httpx
import pytest

from tests.support import Server

serial = count()
ROWS = 600


def people_card(asset_id: str, **extra: object) -> dict:
    return {
        "id": asset_id,
        "title": "People for twins",
        "provider": "city-hospital",
        "classification": "L3",
        "domain": "civil",
        "rights": {"holder": "city-hospital", "personal_data": True},
        "columns": [
            {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
            {"name": "name", "type": "VARCHAR", "role": "identifier"},
            {"name": "district", "type": "VARCHAR", "role": "dimension",
             "domain": ["north", "south", "absent"]},
            {"name": "postcode", "type": "VARCHAR", "role": "filter_only"},
            {"name": "income", "type": "INTEGER", "role": "measure", "bounds": [0, 100000]},
        ],
        "revenue_shares_bp": {"city-hospital": 10000},
        **extra,
    }  # fmt: skip


def people_csv(rows: int = ROWS) -> bytes:
    lines = ["person,name,district,postcode,income"]
    lines += [
        f"P{i:05d},Name {i},{'north' if i % 4 else 'south'},{350000 + i},{1000 + i * 7}"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Developer:
    """A developer of its own organisation, with a grant on one asset."""

    id: str
    key: str
    grant_id: str

    def client(self, server: Server) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def ledger_mark(server: Server) -> int:
    """The ledger's size now: entries from here on are this module's and later ones."""
    return httpx.get(f"{server.url}/v1/ledger/checkpoint", timeout=30).json()["tree_size"]


def ledger_since(server: Server, mark: int) -> list[dict]:
    """Every entry's data from index `mark` on, read page by page as the supervisor."""
    found: list[dict] = []
    after = mark - 1
    with server.client("supervisor") as client:
        while True:
            params = {"limit": 1000, **({"after": after} if after >= 0 else {})}
            page = client.get("/v1/ledger/entries", params=params).json()["items"]
            if not page:
                return found
            found += [json.loads(item["data"]) for item in page]
            after = page[-1]["index"]


def register(server: Server, card: dict, rows: int = ROWS) -> None:
    with server.client("city-hospital") as client:
        registered = client.post(
            "/v1/assets",
            data={"card": json.dumps(card)},
            files={"file": ("people.csv", io.BytesIO(people_csv(rows)), "text/csv")},
        )
    assert registered.status_code == 201, registered.json()


def new_developer(
    server: Server,
    assets: list[str],
    purpose: str = "research",
    columns: dict[str, list[str]] | None = None,
) -> Developer:
    """A developer of a fresh organisation (its budget and usage its own), granted `assets`
    (narrowed to `columns` where given)."""
    name = f"twin-dev-{next(serial)}-{server.process.pid}"
    with server.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": name, "roles": ["developer"], "org": name})
    assert made.status_code == 201, made.json()
    headers = {"Authorization": f"Bearer {made.json()['api_key']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        asked = client.post(
            "/v1/grants",
            json={"assets": assets, "purpose": purpose, "scenario": "twins and dry runs",
                  "methods": ["sql", "job"], "valid_until": "2030-01-01T00:00:00Z",
                  **({"columns": columns} if columns else {})},
        )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    server.approve(asked.json()["id"], "city-hospital", "supervisor")
    return Developer(name, made.json()["api_key"], asked.json()["id"])


@pytest.fixture(scope="module")
def mark(demo: Server) -> int:
    """Where this module's ledger entries start: read from here, not the whole session's."""
    return ledger_mark(demo)


@pytest.fixture(scope="module")
def twinned(demo: Server, mark: int) -> Iterator[tuple[Server, str, Developer]]:
    """An asset with a twin budget, made after `mark`, and a developer granted it."""
    asset = f"twins.people_{next(serial)}"
    register(demo, people_card(asset, twin={"epsilon": 1.0}))
    yield demo, asset, new_developer(demo, [asset])


def _entries(server: Server, mark: int, kind: str, asset: str) -> list[dict]:
    return [e for e in ledger_since(server, mark) if e["type"] == kind and e["asset"] == asset]


def test_a_granted_developer_downloads_csv_and_parquet(twinned, tmp_path) -> None:
    server, asset, developer = twinned
    with developer.client(server) as client:
        as_csv = client.get(f"/v1/assets/{asset}/twin")
        as_parquet = client.get(f"/v1/assets/{asset}/twin", params={"format": "parquet",
                                                                    "rows": 50})  # fmt: skip
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["x-veil-synthetic"] == "true"
    assert "mode=dp" in as_csv.headers["x-veil-twin"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == ROWS  # the public row count
    assert list(rows[0]) == ["person", "name", "district", "postcode", "income"]
    # The NULL count is noised too, so a few NULLs ("") may appear though the data has none.
    assert {row["district"] for row in rows} <= {"north", "south", "absent", ""}
    real = people_csv().decode()
    for row in rows:
        assert row["person"] not in real and row["name"] not in real
        assert row["income"] == "" or 0 <= int(row["income"]) <= 100000
    # Most rows are north, as in the data (ε = 1 over two histograms of 600 people).
    assert sum(row["district"] == "north" for row in rows) > ROWS / 2
    assert as_parquet.status_code == 200
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    (tmp_path / "twin.parquet").write_bytes(as_parquet.content)
    described = duckdb.sql(f"DESCRIBE SELECT * FROM '{tmp_path / 'twin.parquet'}'").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [
        ("person", "VARCHAR"), ("name", "VARCHAR"), ("district", "VARCHAR"),
        ("postcode", "VARCHAR"), ("income", "INTEGER"),
    ]  # fmt: skip
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'twin.parquet'}'").fetchone() == (50,)


def test_who_may_download_a_twin(twinned) -> None:
    server, asset, _ = twinned
    allowed = {"city-hospital", "supervisor", "operator"}
    for who in ("analyst", "fintech", "insurer", "admin", *allowed):
        with server.client(who) as client:
            response = client.get(f"/v1/assets/{asset}/twin", params={"rows": 5})
        if who in allowed:
            assert response.status_code == 200, (who, response.text)
        else:
            assert response.status_code == 403, who
            assert response.json()["error"]["code"] == "POLICY_DENIED"
    with server.client("analyst") as client:
        reasons = client.get(f"/v1/assets/{asset}/twin").json()["error"]["violations"]
        assert reasons == [{"rule": "asset_not_granted"}]
        assert client.get("/v1/assets/twins.nowhere/twin").status_code == 404
    with server.client("operator") as client:
        too_many = client.get(f"/v1/assets/{asset}/twin", params={"rows": 100_001})
        assert too_many.status_code == 422
        assert client.get(f"/v1/assets/{asset}/twin", params={"format": "xlsx"}).status_code == 422


def low_incomes(server: Server, asset: str, developer: Developer) -> int:
    """How many of the twin's rows have an income in the first of twenty bins over
    [0, 100000], where every real income lies: most when drawn from the released histogram,
    about one in twenty when drawn from the card alone."""
    with developer.client(server) as client:
        twin = client.get(f"/v1/assets/{asset}/twin")
    assert twin.status_code == 200, twin.text
    rows = list(csv.DictReader(io.StringIO(twin.text)))
    return sum(row["income"] != "" and int(row["income"]) < 5000 for row in rows)


def test_columns_outside_a_narrowed_grant_come_from_the_card_alone(twinned) -> None:
    """The released histogram of a column the grant leaves out is not the caller's to draw on."""
    server, asset, full = twinned
    narrowed = new_developer(server, [asset], columns={asset: ["person", "district"]})
    assert low_incomes(server, asset, full) > ROWS / 2
    assert low_incomes(server, asset, narrowed) < ROWS / 4


def test_a_narrowing_that_does_not_list_the_asset_leaves_none_of_its_columns(twinned) -> None:
    server, asset, _ = twinned
    other = new_developer(
        server, [asset, "hospital.visits"], "public_welfare", {"hospital.visits": ["district"]}
    )
    with other.client(server) as client:
        asked = client.post("/v1/queries", json={
            "sql": f"SELECT district, COUNT(*) AS n FROM {asset} GROUP BY district"})  # fmt: skip
    assert asked.status_code == 403
    assert low_incomes(server, asset, other) < ROWS / 4


def test_a_grant_not_yet_in_force_widens_no_twin(twinned) -> None:
    server, asset, _ = twinned
    developer = new_developer(server, [asset], columns={asset: ["person", "district"]})
    with developer.client(server) as client:
        later = client.post("/v1/grants", json={
            "assets": [asset], "purpose": "research", "scenario": "from next year",
            "methods": ["sql"], "valid_from": "2029-06-01T00:00:00Z",
            "valid_until": "2030-01-01T00:00:00Z"})  # fmt: skip
    assert later.status_code == 201, later.json()
    server.approve(later.json()["id"], "city-hospital", "supervisor")
    assert low_incomes(server, asset, developer) < ROWS / 4


def test_one_twin_at_a_time_per_principal(twinned) -> None:
    """Each twin is built in the gateway's memory: a second at once waits its turn, more
    are a 429 to retry."""
    server, asset, developer = twinned
    with developer.client(server) as client, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(
            lambda _: client.get(f"/v1/assets/{asset}/twin", params={"rows": 100_000}), range(6)
        ))  # fmt: skip
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    busy = next(answer for answer in answers if answer.status_code == 429)
    assert busy.json()["error"]["code"] == "RATE_LIMITED" and busy.headers["retry-after"] == "1"


def test_the_twin_budget_is_spent_once_per_data_version(mark: int, twinned) -> None:
    server, asset, developer = twinned
    with developer.client(server) as client:
        first = client.get(f"/v1/assets/{asset}/twin", params={"rows": 20})
        again = client.get(f"/v1/assets/{asset}/twin", params={"rows": 20})
    assert first.content == again.content  # the same released histograms, the same seed
    spends = _entries(server, mark, "twin_budget_spent", asset)
    assert len(spends) == 1
    spend = spends[0]
    assert spend["version"] == 1 and spend["provider"] == "city-hospital"
    assert spend["epsilon"] == pytest.approx(1.0) and spend["columns"] == ["district", "income"]
    assert "OpenDP" in spend["mechanism"]
    downloads = _entries(server, mark, "twin_download", asset)
    assert len(downloads) >= 2 and all(e["mode"] == "dp" for e in downloads)
    # Kept sealed beside the data: no histogram in the clear.
    sealed = (server.home / "assets" / asset / "twin-v1.sealed").read_bytes()
    assert b"weights" not in sealed and b"district" not in sealed
    # New data, a new version: its twin is measured, and spent, once more.
    with server.client("city-hospital") as client:
        shown = client.get(f"/v1/assets/{asset}").json()
        card = {key: shown[key] for key in people_card(asset, twin=None)}
        newer = client.post(
            f"/v1/assets/{asset}/versions",
            data={"card": json.dumps(card)},
            files={"file": ("people.csv", io.BytesIO(people_csv(300)), "text/csv")},
        )
        assert newer.status_code == 201, newer.json()
        twin = client.get(f"/v1/assets/{asset}/twin")
    assert twin.status_code == 200 and twin.text.count("\n") == 301
    spends = _entries(server, mark, "twin_budget_spent", asset)
    assert [spend["version"] for spend in spends] == [1, 2]


def test_without_a_twin_budget_the_twin_comes_from_the_card_alone(demo: Server, mark: int) -> None:
    asset = f"twins.public_{next(serial)}"
    register(demo, people_card(asset), rows=40)
    with demo.client("operator") as client:
        response = client.get(f"/v1/assets/{asset}/twin")
    assert response.status_code == 200
    assert "mode=public; epsilon=0" in response.headers["x-veil-twin"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    # Every public district alike, "absent" too: nothing was read from the data.
    assert {row["district"] for row in rows} == {"north", "south", "absent"}
    assert _entries(demo, mark, "twin_budget_spent", asset) == []


def test_a_destroyed_assets_twin_is_gone_as_its_data(demo: Server) -> None:
    asset = f"twins.shredded_{next(serial)}"
    register(demo, people_card(asset), rows=40)
    with demo.client("operator") as client:
        assert client.get(f"/v1/assets/{asset}/twin").status_code == 200
        destroyed = client.request("DELETE", f"/v1/assets/{asset}", json={"reason": "test"})
        assert destroyed.status_code == 200, destroyed.json()
        gone = client.get(f"/v1/assets/{asset}/twin")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "ASSET_DESTROYED"
