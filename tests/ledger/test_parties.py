"""The parties to an entry, read from its data alone."""

from __future__ import annotations

from ledger import billed_cpu_ms, parties
from ledger.pricing import CPU_STEP_MS


def test_a_query_names_its_developer_assets_and_payees_not_its_grant() -> None:
    named = parties(
        {"type": "query", "principal": "dev", "assets": ["a.b"], "grant_id": "g_1",
         "cost": {"assets": {"a.b": 5}}, "postings": [["developer:dev", -5], ["party:p", 5]]}
    )  # fmt: skip
    assert named.principals == {"dev", "p"}
    assert named.assets == {"a.b"}
    # Use of some of a grant's assets is not the business of its other assets' providers.
    assert named.grants == frozenset()


def test_an_entry_naming_no_asset_reaches_its_grant() -> None:
    approved = parties({"type": "grant_approved", "grant": "g_1", "party": "p", "by": "p"})
    assert approved.grants == {"g_1"} and approved.principals == {"p"}
    release = parties({"type": "job_release", "principal": "dev", "grant_id": "g_2", "by": "gate"})
    assert release.grants == {"g_2"} and release.principals == {"dev", "gate"}


def test_a_grant_request_names_its_developer_parties_and_assets() -> None:
    grant = {"id": "g_1", "developer": "dev", "assets": ["a.b"],
             "required_approvals": ["p", "supervisor"]}  # fmt: skip
    named = parties({"type": "grant_requested", "grant": grant, "by": "dev"})
    assert named.principals == {"dev", "p", "supervisor"} and named.assets == {"a.b"}


def test_a_refusal_names_the_assets_it_refused_and_a_stop_its_target() -> None:
    refused = parties({"type": "access_denied", "principal": "x",
                       "resource": {"assets": [{"id": "a.b", "provider": "p"}]}})  # fmt: skip
    assert refused.principals == {"x"} and refused.assets == {"a.b"}
    stop = parties({"type": "emergency_suspended", "kind": "asset", "target": "a.b", "by": "s"})
    assert stop.assets == {"a.b"}
    stop = parties({"type": "emergency_suspended", "kind": "principal", "target": "dev"})
    assert stop.principals == {"dev"}


def test_only_the_logs_own_entries_are_public() -> None:
    assert parties({"type": "signing_key_rotated", "public_key": "k"}).public
    assert not parties({"type": "query", "principal": "dev"}).public
    assert parties({"type": "query", "principal": 7, "assets": "a.b"}).principals == frozenset()


def test_cpu_is_billed_in_whole_steps_rounded_up() -> None:
    assert [billed_cpu_ms(ms) for ms in (0, 1, 99, 100, 101)] == [0, 100, 100, 100, 200]
    assert CPU_STEP_MS == 100
