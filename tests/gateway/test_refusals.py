"""Refusal spikes: one principal past the limit within the window, counted once per spike."""

from __future__ import annotations

from services import refusals
from services.refusals import RefusalWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_spike_is_told_once_and_again_only_after_it_ended() -> None:
    clock = Clock()
    watch = RefusalWatch(limit=3, window_s=60, clock=clock)
    assert [watch.refused("mallory") for _ in range(6)] == [False, False, False, True, False, False]
    assert not watch.refused("alice")  # others are counted apart
    clock.now += 61  # the window has passed: mallory is back within the limit
    assert [watch.refused("mallory") for _ in range(4)] == [False, False, False, True]


def test_refusals_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    watch = RefusalWatch(limit=2, window_s=10, clock=clock)
    for _ in range(10):
        assert not watch.refused("slow")
        clock.now += 6  # never three within ten seconds


def test_memory_is_bounded_by_forgetting_the_least_recent(monkeypatch) -> None:
    monkeypatch.setattr(refusals, "MAX_PRINCIPALS", 2)
    watch = RefusalWatch(limit=1, window_s=60, clock=Clock())
    watch.refused("a")
    watch.refused("b")
    watch.refused("c")  # forgets a
    assert watch._refusals.keys() == {"b", "c"}
    assert not watch.refused("a")  # a starts again from one
