"""The fair queue with slots shared across processes: two queues on one home's slots stand for
two gateway processes. A principal at its limit in one waits in the other without holding a
slot there that others could use, is refused at the deadline like any wait, and goes on once
the other gives its slot back; whatever happens, both kinds of slot are given back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.errors import Busy
from services.shared_slots import FileSlots
from services.throttle import FairQueue
from tests.services.test_throttle import PATIENCE_S, Holder, Waiters, holding


def process(run_root: Path, waiters: Waiters, **limits: float) -> FairQueue:
    """One gateway process's query queue: one slot, one of a principal's, shared slots."""
    given: dict = {
        "slots": 1,
        "per_principal": 1,
        "capacity": 8,
        "per_principal_waiting": 8,
        "wait_s": PATIENCE_S,
        **limits,
    }
    shared = FileSlots(run_root / "query-slots", given["per_principal"])
    return FairQueue(**given, what="queries", waiting=waiters, shared=shared)


def test_a_principal_at_its_limit_elsewhere_waits_without_holding_a_slot_here(tmp_path) -> None:
    waiting_first, waiting_second = Waiters(), Waiters()
    first, second = process(tmp_path, waiting_first), process(tmp_path, waiting_second)
    with holding(first, "a") as running:
        blocked = Holder(second, "a")
        waiting_second.reach(1)
        # The second process's one slot is free for others meanwhile.
        with holding(second, "b"):
            assert not blocked.entered.is_set()
        assert waiting_second.count == 1 and not blocked.entered.is_set()
        running.release.set()
        assert blocked.entered.wait(PATIENCE_S)
    # Now a request of a's in the first process waits in turn, its slot there free for b.
    other = Holder(first, "a")
    waiting_first.reach(1)
    with holding(first, "b"):
        assert not other.entered.is_set()
    blocked.finish()
    assert other.entered.wait(PATIENCE_S)
    other.finish()
    assert blocked.refused is None and other.refused is None


def test_past_the_deadline_it_is_refused_and_leaves_the_queue(tmp_path) -> None:
    first, waiting = process(tmp_path, Waiters()), Waiters()
    second = process(tmp_path, waiting, wait_s=0.2)
    with holding(first, "a"):
        with pytest.raises(Busy, match="came free within 0.2 s") as refused, second.hold("a"):
            pass
        assert refused.value.code == "RATE_LIMITED" and waiting.count == 0
    with second.hold("a"):
        pass


def test_no_room_to_wait_is_a_refusal_at_once(tmp_path) -> None:
    first = process(tmp_path, Waiters())
    second = process(tmp_path, Waiters(), capacity=0)
    with holding(first, "a"):
        with pytest.raises(Busy, match="at most 0 queries may wait"), second.hold("a"):
            pass
        with second.hold("b"):
            pass


def test_both_slots_are_given_back_whatever_happens(tmp_path) -> None:
    """A body that raises gives back its shared slot and its own; so does a failure to take
    the shared slot (its folder gone), and the queue serves again once it is back."""
    first = process(tmp_path, Waiters(), capacity=0)
    second = process(tmp_path, Waiters(), capacity=0)
    with pytest.raises(ValueError), second.hold("a"):
        raise ValueError("the query failed")
    # Its shared slot is free, and the second process's own slot too.
    with first.hold("a"), second.hold("b"):
        pass
    shutil.rmtree(tmp_path)
    with pytest.raises(FileNotFoundError), second.hold("a"):
        pass
    tmp_path.mkdir()
    with second.hold("a"):  # with no room to wait, only a free slot lets it in
        pass
