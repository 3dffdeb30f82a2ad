"""Refusal summaries past a window's party groups: a refusal naming registered assets still
reaches each one's provider, in at most one summary per asset, whatever filled the groups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from governance import Principal
from ledger import parties
from sandbox.errors import SandboxError
from services import refusals
from services.demo import set_up_demo
from services.errors import Denied
from services.metrics import Metrics
from services.queries import QueryRequest, authorise_query
from services.refusals import MAX_GROUPS, Refusal, RefusalSummaries, refusal_of
from services.runtime import Services, open_services
from services.settings import Settings

WINDOW_S = 60
START = 1_714_521_600  # 2024-05-01T00:00:00Z


class Written:
    """The summaries written, by idempotency key, as the ledger keeps the first under a key."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def __call__(self, entry: dict, key: str) -> None:
        self.entries.setdefault(key, entry)


def _summaries(written: Written) -> RefusalSummaries:
    return RefusalSummaries(0, WINDOW_S, written, clock=lambda: START + 30.0,
                            monotonic=lambda: 500.0, timer=False)  # fmt: skip


def _rejected_under(grant: str) -> Refusal:
    """A refusal the guard made, naming only the grant id the caller sent: any string."""
    return Refusal("prober", "query", "query:run", "rejected", ("identifier_column",), (), grant)


def _denied(*assets: str, registered: tuple[str, ...] | None = None) -> Refusal:
    named = tuple(sorted(assets))
    return Refusal("prober", "query", "query:run", "denied", ("asset_not_granted",), named, None,
                   named if registered is None else registered)  # fmt: skip


def _filled(summaries: RefusalSummaries) -> None:
    for n in range(MAX_GROUPS):
        assert summaries.count(_rejected_under(f"g_nobody_{n}"))


def _by_assets(written: Written) -> dict[tuple[str, ...], dict]:
    return {tuple(e.get("assets", ())): e for e in written.entries.values() if "grant_id" not in e}


def test_past_the_cap_a_refusal_counts_once_under_an_asset_it_names_and_is_noted_under_the_others(
) -> None:  # fmt: skip
    written = Written()
    summaries = _summaries(written)
    _filled(summaries)
    for refusal in (
        _denied("h.visits"),
        _denied("h.visits", "i.claims"),
        _denied("i.claims"),
        _denied("i.claims", "x.mine", registered=("i.claims",)),
        _denied("x.mine", registered=()),  # an id the caller made up: no group of its own
    ):
        assert summaries.count(refusal)
    summaries.flush(everything=True)
    spilled = _by_assets(written)
    assert spilled.keys() == {("h.visits",), ("i.claims",), ()}
    visits, claims, nobody = spilled[("h.visits",)], spilled[("i.claims",)], spilled[()]
    assert (visits["refusals"], visits["folded"], visits.get("shared")) == (2, 2, None)
    assert (claims["refusals"], claims["folded"], claims["shared"]) == (2, 2, 1)
    assert (nobody["refusals"], nobody["folded"]) == (1, 1)
    # Each is read by the provider of its asset alone, and counts only refusals naming it.
    assert parties(visits).assets == {"h.visits"} and parties(claims).assets == {"i.claims"}
    # Every refusal is counted once: the sum over the window is exact.
    total = sum(entry["refusals"] for entry in written.entries.values())
    assert total == MAX_GROUPS + 5


def test_past_the_cap_the_groups_grow_with_the_assets_not_with_their_combinations() -> None:
    written = Written()
    summaries = _summaries(written)
    _filled(summaries)
    assets = [f"p.asset_{n}" for n in range(6)]
    combinations = [(a, b) for a in assets for b in assets if a < b]
    for a, b in combinations:
        assert summaries.count(_denied(a, b))
    assert summaries.held() == MAX_GROUPS + len(assets)
    summaries.flush(everything=True)
    spilled = _by_assets(written)
    assert spilled.keys() == {(asset,) for asset in assets}
    # Each asset is named by five pairs: counted where it sorts first, noted where it does not.
    for n, asset in enumerate(assets):
        entry = spilled[(asset,)]
        assert (entry["refusals"], entry.get("shared", 0)) == (len(assets) - 1 - n, n)


def test_a_group_kept_apart_before_the_cap_takes_the_spilled_refusals_of_its_asset() -> None:
    written = Written()
    summaries = _summaries(written)
    assert summaries.count(_denied("h.visits"))  # its own group, within the cap
    for n in range(MAX_GROUPS - 1):
        assert summaries.count(_rejected_under(f"g_nobody_{n}"))
    assert summaries.count(_denied("h.visits", "i.claims"))
    assert summaries.held() == MAX_GROUPS + 1
    summaries.flush(everything=True)
    spilled = _by_assets(written)
    assert spilled[("h.visits",)]["refusals"] == 2 and spilled[("h.visits",)]["folded"] == 1
    assert spilled[("i.claims",)]["refusals"] == 0 and spilled[("i.claims",)]["shared"] == 1


def test_with_no_room_for_its_groups_a_refusal_is_appended_not_hidden(monkeypatch) -> None:
    monkeypatch.setattr(refusals, "MAX_HELD_GROUPS", MAX_GROUPS + 1)
    summaries = _summaries(Written())
    _filled(summaries)
    assert not summaries.count(_denied("h.visits", "i.claims"))  # two groups, room for one
    assert summaries.count(_denied("h.visits"))
    assert summaries.held() == MAX_GROUPS + 1


def test_only_catalogue_assets_count_as_registered() -> None:
    query = {"type": "query", "principal": "prober", "outcome": "denied",
             "assets": ["h.visits"], "decision": {"reasons": ["asset_not_granted"]}}  # fmt: skip
    assert refusal_of(query, "denied", ["asset_not_granted"]).registered == ("h.visits",)
    registering = {"type": "access_denied", "scope": "asset:register", "principal": "prober",
                   "resource": {"assets": [{"id": "made.up", "status": "new"},
                                           {"id": "h.gone", "status": "destroyed"},
                                           {"id": "h.visits", "status": "suspended"}]},
                   "reasons": ["role_not_permitted"]}  # fmt: skip
    counted = refusal_of(registering, "denied", ["role_not_permitted"])
    assert counted.assets == ("h.gone", "h.visits", "made.up")
    assert counted.registered == ("h.gone", "h.visits")


# --- through the services, with the demo's catalogue -------------------------------------------


@pytest.fixture(scope="module")
def veil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home: Path = tmp_path_factory.mktemp("spilled") / "home"
    settings = Settings(home=home, refusal_summary_limit=0, refusal_summary_window_s=86_400)
    set_up_demo(settings)
    services = open_services(settings, Metrics())
    yield services
    services.close()


def _refused(veil: Services, sql: str, grant_id: str | None = None) -> None:
    caller = veil.control.principal("fintech")
    assert isinstance(caller, Principal)
    with pytest.raises((Denied, SandboxError)):
        authorise_query(veil, caller=caller,
                        request=QueryRequest(sql=sql, purpose=None, grant_id=grant_id))  # fmt: skip


def test_the_providers_read_a_probe_on_their_assets_after_the_groups_are_filled(
    veil: Services,
) -> None:
    before = veil.ledger.head()[0]
    for n in range(MAX_GROUPS):  # the guard refuses; the grant id nobody holds is the footprint
        _refused(veil, "SELECT patient_name FROM hospital.visits", grant_id=f"g_nobody_{n}")
    # fintech holds a grant on the claims, not on the visits: the join is denied.
    joined = (
        "SELECT COUNT(*) AS n FROM hospital.visits v "
        "JOIN insurance.claims c ON v.patient_id = c.patient_id"
    )
    _refused(veil, joined)
    settings = veil.settings
    veil.refusal_watch.summarising(
        settings.refusal_summary_limit, settings.refusal_summary_window_s, veil.ledger.append
    ).flush(everything=True)
    written = [data for index, data in veil.ledger.replay() if index >= before]
    joined_in = [entry for entry in written if entry.get("folded")]
    assert [entry["assets"] for entry in joined_in] == [["hospital.visits"]]
    noted = [entry for entry in written if entry.get("shared")]
    assert [(entry["assets"], entry["shared"]) for entry in noted] == [(["insurance.claims"], 1)]
