"""A provider registers an asset in the browser: file, description, a role per column; a card
the API would refuse is refused here too, its errors beside the fields at fault."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import Watch
from tests.console.test_lifecycle import PLANTED, _no_planted_script_ran, _shot, _sign_in
from tests.console.test_sessions import _client, _csrf
from tests.console.test_sessions import _sign_in as _sign_in_over_http
from tests.support import Server, register_households

ROWS = "person,district,income\n" + "".join(
    f"p{i},{'east' if i % 2 else 'west'},{1000 + i}\n" for i in range(500)
)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_provider_registers_an_asset(watch: Watch, server: Server, tmp_path, language) -> None:
    page, asset_id = watch.page, f"city.incomes_{language}"
    data = tmp_path / "incomes.csv"
    data.write_text(ROWS)
    _sign_in(page, server, "city-hospital", language)
    page.goto("/console/assets")
    page.click("#register-link")
    page.set_input_files("#file", str(data))
    page.fill("#asset_id", asset_id)
    page.fill("#title", f"Incomes {PLANTED}")
    page.fill("#description", f"About {PLANTED}")
    page.fill("#domain", "civil")
    page.check("input[name=personal_data][value=yes]")
    page.click("#next")
    expect(page.locator("#columns tbody tr")).to_have_count(3)
    expect(page.locator("select[name=c2_type]")).to_have_value("BIGINT")  # read from the file
    page.select_option("select[name=c0_role]", "privacy_unit")
    page.select_option("select[name=c2_role]", "measure")
    page.click("#register")  # a measure without bounds: refused, the field marked
    expect(page.locator(".refusal")).to_contain_text("CARD_INVALID")
    expect(page.locator("input[name=c2_low].wrong")).to_be_visible()
    expect(page.locator("select[name=c0_role]")).to_have_value("privacy_unit")  # kept
    _shot(page, "register", language)
    page.fill("input[name=c1_description]", f"Where {PLANTED}")
    page.fill("input[name=c2_low]", "0")
    page.fill("input[name=c2_high]", "100000")
    page.click("#register")
    expect(page).to_have_url(re.compile(f"/console/assets/{asset_id}$"))
    expect(page.locator("h1")).to_contain_text(PLANTED)
    expect(page.locator("main > p").first).to_contain_text(f"About {PLANTED}")
    expect(page.locator("#columns")).to_contain_text(f"Where {PLANTED}")
    _no_planted_script_ran(page)
    with server.client("city-hospital") as client:
        shown = client.get(f"/v1/assets/{asset_id}").json()
    assert shown["row_count"] == 500 and shown["rights"]["personal_data"] is True
    assert [c["role"] for c in shown["columns"]] == ["privacy_unit", "dimension", "measure"]


def test_a_developer_cannot_register_and_an_upload_stays_with_its_session(
    server: Server, tmp_path
) -> None:
    with _client(server) as developer:
        _sign_in_over_http(developer, server.keys["analyst"])
        refused = developer.post(
            "/console/assets/new",
            data={"csrf": _csrf(developer), "asset_id": "x.y", "title": "t", "domain": "d",
                  "personal_data": "no"},
            files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")},
        )  # fmt: skip
        assert refused.status_code == 403
    with _client(server) as provider, _client(server) as other:
        _sign_in_over_http(provider, server.keys["city-hospital"])
        step = provider.post(
            "/console/assets/new",
            data={"csrf": _csrf(provider, "/console/assets/new"), "asset_id": "city.stolen",
                  "title": "t", "domain": "d", "personal_data": "no"},
            files={"file": ("a.csv", b"unit,kind\nu1,a\nu2,b\n", "text/csv")},
        )  # fmt: skip
        upload_id = re.search(r'name="upload_id" value="([^"]+)"', step.text)[1]
        _sign_in_over_http(other, server.keys["insurer"])
        form = {"csrf": _csrf(other), "upload_id": upload_id, "column_count": "2",
                "asset_id": "insurance.stolen", "title": "t", "domain": "d",
                "classification": "L2", "personal_data": "no",
                "c0_name": "unit", "c0_type": "VARCHAR", "c0_role": "privacy_unit",
                "c1_name": "kind", "c1_type": "VARCHAR", "c1_role": "dimension"}  # fmt: skip
        stolen = other.post("/console/assets/register", data=form)
        assert stolen.status_code == 422 and "upload the file again" in stolen.text
        assert httpx.get(f"{server.url}/v1/assets/insurance.stolen",
                         headers={"Authorization": f"Bearer {server.keys['insurer']}"}).status_code == 404  # fmt: skip


def test_a_provider_revises_its_card(watch: Watch, server: Server) -> None:
    """What the card says changes, its columns and data do not; a bad purpose is marked."""
    page = watch.page
    assert register_households(server, 50).status_code == 201
    _sign_in(page, server, "city-hospital", "en")
    page.goto("/console/assets/city.households")
    versions = page.locator("#versions tbody tr").count()
    page.click("#revise-link")
    page.fill("#purposes", "public_welfare, Not A Purpose")
    page.click("#revise")
    expect(page.locator(".refusal")).to_contain_text("CARD_INVALID")
    expect(page.locator("#purposes.wrong")).to_be_visible()
    page.fill("#purposes", "public_welfare, medical_research")
    page.fill("#title", f"Incomes, revised {PLANTED}")
    page.click("#revise")
    expect(page.locator("h1")).to_contain_text("Incomes, revised")
    expect(page.locator("#versions tbody tr")).to_have_count(versions + 1)
    _no_planted_script_ran(page)
    with server.client("city-hospital") as client:
        shown = client.get("/v1/assets/city.households").json()
    assert shown["purposes"] == ["public_welfare", "medical_research"]
    assert shown["row_count"] == 50 and shown["revision"] == 2


def test_another_provider_cannot_revise_a_card(watch: Watch, server: Server) -> None:
    page = watch.page
    _sign_in(page, server, "insurer", "en")
    response = page.goto("/console/assets/hospital.visits/revise")
    assert response is not None and response.status == 403
