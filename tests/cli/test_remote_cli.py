"""The remote commands, mounted in `veil`, against the live demo: every role's work, each format,
and exit codes (1 for a refusal, 2 for usage or no connection)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from tests.client.onboarding import BY_DISTRICT_JOB, VISITS_BY_DISTRICT, Developer, onboard
from tests.support import Server


@pytest.fixture(scope="module")
def developer(demo: Server) -> Developer:
    return onboard(demo, "cli-dev")


def veil(demo: Server, who: str | None, *args: str, code: int = 0) -> str:
    """Run `veil ARGS` as `who`, assert its exit code, and return what it printed."""
    env = {"VEIL_URL": demo.url, "VEIL_API_KEY": demo.keys[who] if who else ""}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout if code == 0 else result.stdout + result.stderr


def test_assets_print_as_table_json_and_csv(demo: Server, developer: Developer) -> None:
    table = veil(demo, developer.id, "assets", "list")
    assert "hospital.visits" in table and "insurance.claims" in table
    listed = json.loads(veil(demo, developer.id, "assets", "list", "--format", "json"))
    assert {"hospital.visits", "insurance.claims"} <= {asset["id"] for asset in listed}
    rows = list(
        csv.DictReader(io.StringIO(veil(demo, developer.id, "assets", "list", "--format", "csv")))
    )
    assert {row["id"]: row["row_count"] for row in rows}["hospital.visits"] == "30000"
    shown = veil(demo, developer.id, "assets", "show", "hospital.visits")
    assert "privacy_unit" in shown and "patient_id" in shown
    assert "version" in veil(demo, "city-hospital", "assets", "versions", "hospital.visits")


def test_an_asset_is_registered_versioned_and_destroyed(demo: Server, tmp_path) -> None:
    card = {
        "id": "clitest.households",
        "title": "CLI households",
        "provider": "city-hospital",
        "classification": "L2",
        "domain": "civil",
        "rights": {"holder": "city-hospital", "personal_data": False},
        "columns": [
            {"name": "household", "type": "VARCHAR", "role": "privacy_unit"},
            {"name": "size", "type": "INTEGER", "role": "dimension"},
        ],
        "revenue_shares_bp": {"city-hospital": 10000},
    }
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "data.csv").write_text(
        "household,size\n" + "".join(f"h{i},{i % 4}\n" for i in range(30))
    )
    files = [str(tmp_path / "card.json"), str(tmp_path / "data.csv")]
    made = json.loads(veil(demo, "city-hospital", "assets", "register", *files, "--format", "json"))
    assert made["id"] == "clitest.households" and made["row_count"] == 30
    again = veil(
        demo,
        "city-hospital",
        "assets",
        "add-version",
        "clitest.households",
        *files,
        "--format",
        "json",
    )
    assert json.loads(again)["version"] == 2
    refused = veil(
        demo, "city-hospital", "assets", "destroy", "clitest.households", "--reason", "test", code=1
    )
    assert "POLICY_DENIED" in refused  # only an operator destroys
    gone = json.loads(
        veil(
            demo,
            "operator",
            "assets",
            "destroy",
            "clitest.households",
            "--reason",
            "test",
            "--format",
            "json",
        )
    )
    assert gone["method"] == "crypto_shred" and gone["receipt"]["ledger_index"] > 0
    assert "destroyed" in veil(demo, "operator", "assets", "show", "clitest.households")


def test_a_grant_is_requested_approved_rejected_and_revoked(demo: Server, developer: Developer):
    asked = [
        "grants",
        "request",
        "--asset",
        "hospital.visits",
        "--purpose",
        "public_welfare",
        "--scenario",
        "cli",
        "--valid-until",
        "2030-01-01T00:00:00Z",
        "--column",
        "hospital.visits.district",
        "--queries-per-day",
        "5",
        "--format",
        "json",
    ]
    first = json.loads(veil(demo, developer.id, *asked))
    assert first["status"] == "pending" and first["columns"] == {"hospital.visits": ["district"]}
    veil(demo, "city-hospital", "grants", "approve", first["id"])
    active = json.loads(
        veil(demo, "supervisor", "grants", "approve", first["id"], "--format", "json")
    )
    assert active["status"] == "active"
    shown = veil(demo, developer.id, "grants", "show", first["id"])
    assert "activated" in shown and "requested" in shown
    revoked = veil(demo, "supervisor", "grants", "revoke", first["id"], "--reason", "done")
    assert "revoked" in revoked
    second = json.loads(veil(demo, developer.id, *asked))
    assert "rejected" in veil(
        demo, "supervisor", "grants", "reject", second["id"], "--reason", "no"
    )
    listed = veil(demo, developer.id, "grants", "list", "--status", "revoked", "--format", "csv")
    assert first["id"] in listed and second["id"] not in listed
    assert "ASSET.COLUMN" in veil(demo, developer.id, *asked[:-4], "--column", "visits", code=2)


def test_queries_run_and_the_legacy_query_keeps_its_json(demo: Server, developer: Developer):
    table = veil(
        demo, developer.id, "queries", "run", VISITS_BY_DISTRICT, "--grant", developer.grant
    )
    assert "Cangshan" in table and "receipt: ledger index" in table
    answer = json.loads(veil(demo, developer.id, "query", VISITS_BY_DISTRICT))
    assert answer["columns"] == ["district", "patients"] and answer["receipt"]["ledger_index"]
    rows = list(
        csv.reader(
            io.StringIO(
                veil(demo, developer.id, "queries", "run", VISITS_BY_DISTRICT, "--format", "csv")
            )
        )
    )
    assert rows[0] == ["district", "patients"] and len(rows) == 9
    refused = veil(demo, developer.id, "query", "SELECT patient_name FROM hospital.visits", code=1)
    assert json.loads(refused)["error"]["code"] == "QUERY_REJECTED"
    said = veil(
        demo, developer.id, "queries", "run", "SELECT patient_name FROM hospital.visits", code=1
    )
    assert "QUERY_REJECTED:" in said and "identifier_column (patient_name)" in said
    assert "UNAUTHENTICATED" in veil(demo, "analyst", "assets", "list", "--key", "veil_x", code=1)
    assert "VEIL_API_KEY" in veil(demo, None, "queries", "run", "SELECT 1", code=2)
    unreachable = ["assets", "list", "--url", "http://127.0.0.1:9", "--key", "k"]
    assert "CONNECTION_FAILED" in veil(demo, "analyst", *unreachable, code=2)


def test_a_job_is_submitted_waited_for_and_read(demo: Server, developer: Developer, tmp_path):
    code = tmp_path / "job.py"
    code.write_text(BY_DISTRICT_JOB)
    done = veil(
        demo, developer.id, "jobs", "submit", str(code), "--grant", developer.grant, "--wait"
    )
    assert "succeeded" in done and "by_district" in done and "Cangshan" in done
    job_id = json.loads(veil(demo, developer.id, "jobs", "list", "--format", "json"))[0]["id"]
    record = json.loads(veil(demo, developer.id, "jobs", "status", job_id, "--format", "json"))
    assert record["status"] == "succeeded" and len(record["outputs"]["by_district"]["rows"]) == 8
    assert "succeeded" in veil(demo, developer.id, "jobs", "wait", job_id)
    assert "CONFLICT" in veil(demo, developer.id, "jobs", "cancel", job_id, code=1)
    refused = veil(
        demo, developer.id, "jobs", "review", job_id, "--approve", "--reason", "x", code=1
    )
    assert "POLICY_DENIED" in refused or "CONFLICT" in refused
    assert "--approve or --reject" in veil(
        demo, "operator", "jobs", "review", job_id, "--reason", "x", code=2
    )


def test_a_job_runs_locally_against_downloaded_twins(demo: Server, developer: Developer, tmp_path):
    """`jobs run --local` gets the twin over HTTP and runs the job here under the same rules."""
    twin = tmp_path / "visits.csv"
    veil(demo, developer.id, "assets", "twin", "hospital.visits", "--out", str(twin),
         "--file-format", "csv", "--rows", "500")  # fmt: skip
    assert twin.read_text().count("\n") == 501
    code = tmp_path / "job.py"
    code.write_text(BY_DISTRICT_JOB)
    ran = json.loads(
        veil(
            demo,
            developer.id,
            "jobs",
            "run",
            str(code),
            "--local",
            "--asset",
            "hospital.visits",
            "--format",
            "json",
        )  # fmt: skip
    )
    districts = {row[0] for row in ran["outputs"]["by_district"]["rows"]}
    assert "Cangshan" in districts and ran["queries"] == 1
    code.write_text("import os\n")
    refused = veil(
        demo, developer.id, "jobs", "run", str(code), "--local", "--asset", "hospital.visits",
        code=1,
    )  # fmt: skip
    assert "JOB_REJECTED" in refused
    assert "--local" in veil(demo, developer.id, "jobs", "run", str(code), "--asset", "x", code=2)


def test_emergency_stops_and_resumes_a_principal(demo: Server) -> None:
    target = onboard(demo, "cli-stopped")
    stop = ["--principal", target.id, "--reason", "cli test"]
    assert "emergency_suspended" in veil(demo, "supervisor", "emergency", "suspend", *stop)
    assert "POLICY_DENIED" in veil(demo, target.id, "assets", "list", code=1)
    assert "emergency_resumed" in veil(demo, "supervisor", "emergency", "resume", *stop)
    assert "hospital.visits" in veil(demo, target.id, "assets", "list")
    both = ["--principal", target.id, "--asset", "hospital.visits", "--reason", "x"]
    assert "exactly one" in veil(demo, "supervisor", "emergency", "suspend", *both, code=2)
    assert "POLICY_DENIED" in veil(demo, target.id, "emergency", "suspend", *stop, code=1)


def test_budgets_usage_and_settlements(demo: Server, developer: Developer) -> None:
    veil(demo, developer.id, "query", VISITS_BY_DISTRICT)
    budgets = json.loads(veil(demo, "supervisor", "budgets", "--format", "json"))
    assert "organisations" in budgets and "all_developers" in budgets
    assert "period" in veil(demo, developer.id, "budgets")
    usage = json.loads(veil(demo, developer.id, "usage", "--format", "json"))
    assert usage["requests"] >= 1 and {item["principal"] for item in usage["items"]} == {
        developer.id
    }
    assert "released" in veil(demo, developer.id, "usage")
    settled = json.loads(veil(demo, "supervisor", "settlements", "--format", "json"))
    assert settled["tree_size"] > 0 and "parties" in settled
    assert "charged (minor units)" in veil(demo, "supervisor", "settlements")
    postings = veil(demo, "supervisor", "settlements", "--postings")
    assert postings.startswith("ledger_index,at,reference,account,amount_minor,currency")
    assert "POLICY_DENIED" in veil(demo, developer.id, "settlements", code=1)
    assert "Invalid value" in veil(demo, developer.id, "usage", "--format", "xml", code=2)


def test_ledger_inclusion_checks_a_receipt_against_the_pinned_key(demo: Server, developer):
    from ledger.checkpoints import public_key_b64
    from ledger.keys import load_signing_key

    answer = json.loads(veil(demo, developer.id, "query", VISITS_BY_DISTRICT))
    index, leaf = str(answer["receipt"]["ledger_index"]), answer["receipt"]["leaf_hash"]
    pinned = public_key_b64(load_signing_key(demo.home / "keys" / "ledger-signing.key"))
    checked = veil(demo, None, "ledger", "inclusion", index, leaf, "--public-key", pinned)
    assert "tree_size" in checked and leaf in checked
    tampered = leaf[:-1] + ("0" if leaf[-1] != "0" else "1")
    failed = veil(
        demo, None, "ledger", "inclusion", index, tampered, "--public-key", pinned, code=1
    )
    assert "RECEIPT_INVALID" in failed
    assert pinned in veil(demo, None, "ledger", "public-key")
    assert "note" in veil(demo, None, "ledger", "checkpoint")
    entries = json.loads(veil(demo, developer.id, "ledger", "entries", "--format", "json"))
    assert leaf in {entry["leaf_hash"] for entry in entries}


def test_veil_client_alone_has_the_same_remote_commands(demo: Server) -> None:
    from typer.main import get_command
    from veil_client.cli import app as client_app

    def names(group: object) -> set[str]:
        commands = getattr(group, "commands", {})
        return {
            f"{name} {sub}".strip() for name, cmd in commands.items() for sub in names(cmd) or {""}
        }

    remote = names(get_command(client_app))
    assert {"assets list", "jobs review", "ledger inclusion", "query", "settlements"} <= remote
    assert remote <= names(get_command(app))  # all mounted in `veil`, beside its own
    shown = CliRunner().invoke(
        client_app, ["ledger", "public-key", "--url", demo.url, "--format", "json"]
    )
    assert shown.exit_code == 0 and json.loads(shown.stdout)["name"] == "veil.local/ledger"
