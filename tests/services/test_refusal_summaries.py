"""Refusal summaries: past a principal's rate, refusals are counted exactly into one entry per
window and party group, written once, readable by the same parties as the entries they replace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance import Principal
from ledger import parties
from ledger.usage import usage
from policies.engine import POLICY_ERROR
from services import refusals
from services.authorisation import authorise
from services.demo import set_up_demo
from services.errors import Denied
from services.metrics import Metrics
from services.refusals import Refusal, RefusalSummaries, refusal_of
from services.runtime import Services, open_services
from services.settings import Settings

WINDOW_S = 60
# 2024-05-01T00:00:30Z: half a minute into a window.
START = 1_714_521_600


class Clocks:
    """Wall and monotonic time, moved together by hand."""

    def __init__(self) -> None:
        self.wall = START + 30.0
        self.instant = 500.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.instant += seconds


class Ledger:
    """Appends as the real ledger does: the same key again writes nothing more."""

    def __init__(self, failures: int = 0) -> None:
        self.entries: dict[str, dict] = {}
        self.failures = failures
        self.written = threading.Event()

    def __call__(self, entry: dict, key: str) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("the store is away")
        self.entries.setdefault(key, entry)
        self.written.set()


def _summaries(ledger: Ledger, clocks: Clocks, limit: int = 3) -> RefusalSummaries:
    return RefusalSummaries(
        limit, WINDOW_S, ledger, clock=lambda: clocks.wall,
        monotonic=lambda: clocks.instant, timer=False,
    )  # fmt: skip


def _rejected(principal: str = "mallory", rule: str = "identifier_column") -> Refusal:
    return Refusal(principal, "query", "query:run", "rejected", (rule,))


def _denied(principal: str = "mallory", *assets: str) -> Refusal:
    return Refusal(principal, "query", "query:run", "denied", ("asset_not_granted",), assets)


def test_past_the_limit_refusals_are_counted_and_written_when_the_window_closes() -> None:
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks)
    made = [_rejected(), _rejected(rule="measure_in_where"), _rejected()] * 3
    counted = [summaries.count(refusal) for refusal in made]
    assert counted == [False] * 3 + [True] * 6  # the first three are appended one by one
    assert [summaries.count(_rejected("alice")) for _ in range(3)] == [False] * 3
    assert summaries.flush() == 0 and ledger.entries == {}  # still open
    clocks.advance(WINDOW_S)
    assert summaries.flush() == 1
    ((key, entry),) = ledger.entries.items()
    assert key.startswith("refusals:mallory:2024-05-01T00:00:00Z:")
    assert entry == {
        "type": "refusals_summarised",
        "principal": "mallory",
        "window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-01T00:01:00Z"},
        "at": "2024-05-01T00:00:00Z",
        "limit": 3,
        "refusals": 6,
        "counts": [
            {"record": "query", "scope": "query:run", "outcome": "rejected", "refusals": 6,
             "reasons": {"identifier_column": 4, "measure_in_where": 2}},
        ],
    }  # fmt: skip
    # A new window counts afresh: its first three are appended again.
    assert [summaries.count(_rejected()) for _ in range(4)] == [False] * 3 + [True]
    assert summaries.flush(everything=True) == 1 and len(ledger.entries) == 2


def test_a_summary_the_ledger_refuses_is_kept_and_written_once() -> None:
    ledger, clocks = Ledger(failures=1), Clocks()
    summaries = _summaries(ledger, clocks, limit=0)
    assert all(summaries.count(_rejected()) for _ in range(5))
    clocks.advance(WINDOW_S)
    assert summaries.flush() == 0 and summaries.held() == 1  # the store failed: kept
    assert summaries.count(_rejected())  # counted in the next window, not the frozen one
    assert summaries.flush() == 1 and summaries.held() == 1
    assert summaries.flush() == 0
    clocks.advance(WINDOW_S)
    assert summaries.flush() == 1 and summaries.held() == 0
    assert [entry["refusals"] for entry in ledger.entries.values()] == [5, 1]


def test_a_write_that_committed_but_failed_to_answer_is_not_counted_twice() -> None:
    committed: dict[str, dict] = {}
    answers = iter([OSError("the answer was lost"), None])

    def write(entry: dict, key: str) -> None:
        committed.setdefault(key, entry)
        if (failure := next(answers)) is not None:
            raise failure

    clocks = Clocks()
    summaries = RefusalSummaries(0, WINDOW_S, write, clock=lambda: clocks.wall,
                                 monotonic=lambda: clocks.instant, timer=False)  # fmt: skip
    for _ in range(4):
        summaries.count(_rejected())
    assert summaries.flush(everything=True) == 0
    assert summaries.flush() == 1  # the same key again: the ledger keeps the first
    assert [entry["refusals"] for entry in committed.values()] == [4]


def test_summaries_name_the_parties_their_refusals_entries_named() -> None:
    entries = [
        {"type": "access_denied", "scope": "grant:request", "principal": "mallory",
         "resource": {"assets": [{"id": "hospital.visits"}, {"id": "insurance.claims"}]},
         "reasons": ["role_not_permitted"]},
        {"type": "query", "principal": "mallory", "outcome": "denied",
         "assets": ["hospital.visits"], "grant_id": "g_1",
         "decision": {"reasons": ["asset_not_granted"]}},
        {"type": "query", "principal": "mallory", "outcome": "rejected", "grant_id": "g_2",
         "rules": ["identifier_column"]},
        {"type": "access_denied", "scope": "policy:reload", "principal": "mallory",
         "resource": {}, "reasons": ["role_not_permitted"]},
    ]  # fmt: skip
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks, limit=0)
    for entry in entries:
        outcome = entry.get("outcome", "denied")
        reasons = entry.get("rules") or entry.get("reasons") or entry["decision"]["reasons"]
        counted = refusal_of(entry, outcome, reasons)
        assert counted is not None and summaries.count(counted)
    summaries.flush(everything=True)
    written = list(ledger.entries.values())
    assert len(written) == len(entries)
    for entry, summary in zip(entries, written, strict=True):
        assert parties(summary) == parties(entry)
    assert written[0]["counts"][0]["scope"] == "grant:request"
    assert written[2]["grant_id"] == "g_2" and "assets" not in written[2]


def test_an_entry_naming_other_principals_is_not_summarised() -> None:
    entry = {"type": "access_denied", "principal": "mallory", "developer": "alice",
             "scope": "grant:approve", "resource": {}, "reasons": ["not_grant_party"]}  # fmt: skip
    assert refusal_of(entry, "denied", entry["reasons"]) is None


def test_groups_past_the_cap_fold_into_the_group_naming_no_party(monkeypatch) -> None:
    monkeypatch.setattr(refusals, "MAX_GROUPS", 2)
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks, limit=0)
    for assets in (("a.one",), ("a.two",), ("a.three",), ("a.one",), ("a.four",)):
        assert summaries.count(_denied("mallory", *assets))
    summaries.flush(everything=True)
    written = {tuple(e.get("assets", ())): e for e in ledger.entries.values()}
    assert written.keys() == {("a.one",), ("a.two",), ()}
    assert written[("a.one",)]["refusals"] == 2 and written[("a.two",)]["refusals"] == 1
    assert written[()]["refusals"] == 2 and written[()]["folded"] == 2
    assert sum(entry["refusals"] for entry in written.values()) == 5


def test_reasons_past_the_cap_count_as_other(monkeypatch) -> None:
    monkeypatch.setattr(refusals, "MAX_REASONS", 2)
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks, limit=0)
    for rule in ("r1", "r2", "r3", "r4", "r1"):
        summaries.count(_rejected(rule=rule))
    summaries.flush(everything=True)
    (entry,) = ledger.entries.values()
    assert entry["counts"][0]["reasons"] == {"r1": 2, "r2": 1, "other": 2}


def test_memory_is_bounded_and_a_forgotten_window_is_written_not_lost(monkeypatch) -> None:
    monkeypatch.setattr(refusals, "MAX_PRINCIPALS", 2)
    monkeypatch.setattr(refusals, "MAX_HELD_GROUPS", 3)
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks, limit=1)
    for principal in ("a", "b", "c"):  # c's window pushes a's out, early
        assert [summaries.count(_rejected(principal)) for _ in range(3)] == [False, True, True]
    assert summaries.held() == 3
    # No room for a fourth group: d's refusals are appended one by one, never dropped.
    assert [summaries.count(_rejected("d")) for _ in range(3)] == [False, False, False]
    assert summaries.flush() == 2  # a's and b's, though their window has not ended
    assert [entry["principal"] for entry in ledger.entries.values()] == ["a", "b"]
    summaries.flush(everything=True)
    written = {e["principal"]: e["refusals"] for e in ledger.entries.values()}
    assert written == {"a": 2, "b": 2, "c": 2}


def test_close_writes_every_open_window_and_counts_no_more() -> None:
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks, limit=0)
    assert summaries.count(_rejected()) and summaries.count(_rejected("alice"))
    summaries.close()
    assert sorted(e["principal"] for e in ledger.entries.values()) == ["alice", "mallory"]
    assert not summaries.count(_rejected())  # appended one by one from now on
    assert summaries.held() == 0


def test_a_clock_stepped_back_never_reuses_a_key() -> None:
    ledger, clocks = Ledger(), Clocks()
    summaries = _summaries(ledger, clocks, limit=0)
    summaries.count(_rejected())
    clocks.instant += WINDOW_S  # the window ends, and the wall clock is put back a minute
    summaries.flush()
    summaries.count(_rejected())
    summaries.flush(everything=True)
    assert len(ledger.entries) == 2
    assert {e["window"]["start"] for e in ledger.entries.values()} == {"2024-05-01T00:00:00Z"}


def test_the_timer_writes_a_window_when_it_ends() -> None:
    ledger = Ledger()
    summaries = RefusalSummaries(0, 1, ledger)
    try:
        assert summaries.count(_rejected())
        assert ledger.written.wait(timeout=30)
        (entry,) = ledger.entries.values()
        assert entry["refusals"] == 1
    finally:
        summaries.close()


def test_usage_counts_the_refusals_of_a_summary_by_outcome() -> None:
    line = {"type": "query", "principal": "mallory", "outcome": "rejected",
            "at": "2024-05-01T00:00:05Z", "query_id": "q_1"}  # fmt: skip
    summary = {
        "type": "refusals_summarised", "principal": "mallory", "at": "2024-05-01T00:00:00Z",
        "counts": [
            {"record": "query", "scope": "query:run", "outcome": "rejected", "refusals": 7},
            {"record": "query", "scope": "query:run", "outcome": "denied", "refusals": 2},
            {"record": "access_denied", "scope": "policy:reload", "outcome": "denied",
             "refusals": 5},
        ],
    }  # fmt: skip
    report = usage([(0, line), (1, summary)], "2024-05", lambda data: True)
    assert dict(report.outcomes) == {"rejected": 8, "denied": 2}
    assert report.requests == 10 and len(report.lines) == 1
    assert usage([(1, summary)], "2024-05", lambda data: False).requests == 0
    assert usage([(1, summary)], "2024-06", lambda data: True).requests == 0


@pytest.fixture(scope="module")
def veil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home: Path = tmp_path_factory.mktemp("summaries") / "home"
    settings = Settings(home=home, refusal_summary_limit=2, refusal_summary_window_s=86_400)
    set_up_demo(settings)
    services = open_services(settings, Metrics())
    yield services
    services.close()


def _size(veil: Services) -> int:
    return veil.ledger.head()[0]


def _write_open_windows(veil: Services) -> None:
    """Write every open window's summary now, as the timer or a shutdown would."""
    settings = veil.settings
    veil.refusal_watch.summarising(
        settings.refusal_summary_limit, settings.refusal_summary_window_s, veil.ledger.append
    ).flush(everything=True)


def _deny_reload(veil: Services, who: str, times: int) -> None:
    caller = veil.control.principal(who)
    assert isinstance(caller, Principal)
    for _ in range(times):
        with pytest.raises(Denied):
            authorise(veil, caller=caller, scope="policy:reload", resource={})


def test_denials_past_the_limit_grow_the_ledger_once_per_window(veil: Services) -> None:
    before = _size(veil)
    _deny_reload(veil, "fintech", 12)
    assert _size(veil) - before == 2  # the limit, appended one by one
    _write_open_windows(veil)
    assert _size(veil) - before == 3
    _, last = list(veil.ledger.replay())[-1]
    assert (last["type"], last["principal"], last["refusals"]) == (
        "refusals_summarised", "fintech", 10,
    )  # fmt: skip
    assert last["counts"] == [
        {"record": "access_denied", "scope": "policy:reload", "outcome": "denied",
         "refusals": 10, "reasons": {"role_not_permitted": 10}},
    ]  # fmt: skip


def test_refusals_an_engine_failure_caused_are_appended_and_not_counted(veil: Services) -> None:
    before = _size(veil)
    for _ in range(5):
        entry = {"type": "access_denied", "scope": "catalog:read", "principal": "insurer",
                 "resource": {}, "reasons": [POLICY_ERROR], "at": "2024-05-01T00:00:00Z"}  # fmt: skip
        receipt = veil.refused("insurer", "denied", [POLICY_ERROR], entry=entry,
                               key=f"engine-test:{_size(veil)}")  # fmt: skip
        assert receipt is not None and receipt.fresh
    assert _size(veil) - before == 5
    # They did not use up the principal's limit: its own next two are still appended.
    _deny_reload(veil, "insurer", 3)
    assert _size(veil) - before == 7
    _write_open_windows(veil)
    assert _size(veil) - before == 8


def test_at_shutdown_open_windows_are_written_and_later_refusals_appended(
    veil: Services,
) -> None:
    _deny_reload(veil, "analyst", 3)
    before = _size(veil)
    veil.refusal_watch.close()  # as Services.close does
    assert _size(veil) - before == 1
    _deny_reload(veil, "analyst", 2)
    assert _size(veil) - before == 3
