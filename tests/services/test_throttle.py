"""The fair queue: requests wait for a slot rather than being refused, take turns across
principals, and are refused (Busy) only past the queue's bounds or its deadline; whatever
happens to a request, its place and its slot are given back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from queue import SimpleQueue

import pytest

from services.errors import Busy
from services.throttle import FairQueue

PATIENCE_S = 60


class Waiters:
    """Counts the requests waiting, as the gauge on /metrics does, and lets a test wait for
    a count instead of guessing when a thread has started to wait."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def inc(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def dec(self) -> None:
        with self._changed:
            self.count -= 1
            self._changed.notify_all()

    def reach(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.count == count, PATIENCE_S), self.count


def fair_queue(waiters: Waiters, **limits: float) -> FairQueue:
    given: dict = {
        "slots": 1,
        "per_principal": 1,
        "capacity": 8,
        "per_principal_waiting": 8,
        "wait_s": PATIENCE_S,
        **limits,
    }
    return FairQueue(**given, what="queries", waiting=waiters)


class Holder:
    """A thread that holds a slot of `queue` for `principal` until released; once in its
    slot it puts itself on `admitted`, if given."""

    def __init__(
        self,
        queue: FairQueue,
        principal: str,
        admitted: SimpleQueue[Holder] | None = None,
        gone: threading.Event | None = None,
    ) -> None:
        self.principal = principal
        self.entered = threading.Event()
        self.release = threading.Event()
        self.refused: Busy | None = None
        self._thread = threading.Thread(target=self._hold, args=(queue, admitted, gone))
        self._thread.start()

    def _hold(
        self,
        queue: FairQueue,
        admitted: SimpleQueue[Holder] | None,
        gone: threading.Event | None,
    ) -> None:
        try:
            with queue.hold(self.principal, gone):
                self.entered.set()
                if admitted is not None:
                    admitted.put(self)
                self.release.wait(PATIENCE_S)
        except Busy as exc:
            self.refused = exc

    def finish(self) -> None:
        self.release.set()
        self._thread.join(PATIENCE_S)


@contextmanager
def holding(queue: FairQueue, principal: str) -> Iterator[Holder]:
    holder = Holder(queue, principal)
    try:
        assert holder.entered.wait(PATIENCE_S)
        yield holder
    finally:
        holder.finish()


def send_in_turn(
    queue: FairQueue, waiters: Waiters, principals: str, admitted: SimpleQueue[Holder]
) -> list[Holder]:
    """One request per letter, each known to be waiting before the next is sent."""
    holders = []
    for count, principal in enumerate(principals, start=waiters.count + 1):
        holders.append(Holder(queue, principal, admitted))
        waiters.reach(count)
    return holders


def run_order(admitted: SimpleQueue[Holder], requests: int) -> str:
    """Whose requests ran, in order, each finishing before the next may start."""
    order = ""
    for _ in range(requests):
        holder = admitted.get(timeout=PATIENCE_S)
        order += holder.principal
        holder.finish()
    return order


def test_a_request_with_no_free_slot_waits_instead_of_being_refused() -> None:
    waiters = Waiters()
    queue = fair_queue(waiters)
    with holding(queue, "a") as first:
        second = Holder(queue, "a")
        waiters.reach(1)
        assert not second.entered.is_set()
        first.release.set()
        assert second.entered.wait(PATIENCE_S)
        second.finish()
    assert second.refused is None and waiters.count == 0


def test_a_principal_runs_at_most_its_share_and_others_take_the_rest() -> None:
    waiters = Waiters()
    queue = fair_queue(waiters, slots=2, per_principal=1)
    with holding(queue, "a") as first:
        second = Holder(queue, "a")
        waiters.reach(1)
        with queue.hold("b"):  # the second slot: b's at once, though a's request came first
            assert waiters.count == 1 and not second.entered.is_set()
        first.release.set()
        assert second.entered.wait(PATIENCE_S)
        second.finish()


def test_a_principal_with_one_request_is_not_starved_by_one_with_many() -> None:
    """b's single request came after two of a's, yet takes the next turn: a just had one."""
    waiters = Waiters()
    queue = fair_queue(waiters)
    admitted: SimpleQueue[Holder] = SimpleQueue()
    with holding(queue, "a"):
        send_in_turn(queue, waiters, "aab", admitted)
    assert run_order(admitted, 3) == "baa"


def test_the_principal_running_fewest_goes_first() -> None:
    """a's last turn is older than b's, but a runs two to b's none: b's request goes first."""
    waiters = Waiters()
    queue = fair_queue(waiters, slots=3, per_principal=3)
    admitted: SimpleQueue[Holder] = SimpleQueue()
    with holding(queue, "a"), holding(queue, "a"):
        with holding(queue, "b"):
            send_in_turn(queue, waiters, "ab", admitted)
        assert run_order(admitted, 1) == "b"
    assert run_order(admitted, 1) == "a"


def test_a_full_queue_refuses_at_once() -> None:
    """One principal may not fill the queue for everyone; nobody may wait past its size."""
    waiters = Waiters()
    queue = fair_queue(waiters, capacity=3, per_principal_waiting=1)
    admitted: SimpleQueue[Holder] = SimpleQueue()
    with holding(queue, "a"):
        send_in_turn(queue, waiters, "ab", admitted)
        over_its_share = pytest.raises(Busy, match="at most 1 queries of one principal")
        with over_its_share as refused, queue.hold("a"):
            pass
        assert refused.value.code == "RATE_LIMITED"
        send_in_turn(queue, waiters, "c", admitted)
        with pytest.raises(Busy, match="at most 3 queries may wait"), queue.hold("d"):
            pass
    # Those waiting still run, a's last: it has just had a turn.
    assert run_order(admitted, 3) == "bca"


def test_accounts_within_their_shares_cannot_fill_the_queue_for_everyone_else() -> None:
    """a and b fill the queue, each within its share (the red team's two accounts): c still
    gets a place, the newest request of the principal with the most waiting giving its own."""
    waiters = Waiters()
    queue = fair_queue(waiters, capacity=4, per_principal_waiting=2)
    admitted: SimpleQueue[Holder] = SimpleQueue()
    with holding(queue, "a"):
        held = send_in_turn(queue, waiters, "aabb", admitted)
        for newcomer, displaced in (("c", held[1]), ("d", held[3])):
            Holder(queue, newcomer, admitted)
            displaced.finish()
            assert displaced.refused is not None
            assert "gave its place up" in str(displaced.refused)
            waiters.reach(4)
        # One each: the next has no one with more waiting to take the place of.
        with pytest.raises(Busy, match="at most 4 queries may wait"), queue.hold("e"):
            pass
    assert sorted(run_order(admitted, 4)) == ["a", "b", "c", "d"]


def test_a_request_waiting_past_the_deadline_is_refused_and_leaves_the_queue() -> None:
    waiters = Waiters()
    queue = fair_queue(waiters, wait_s=0.01, capacity=1)
    with holding(queue, "a"):
        with pytest.raises(Busy, match="within 0.01 s"), queue.hold("b"):
            pass
        assert waiters.count == 0
        # Its place is free again: another may wait.
        with pytest.raises(Busy, match="within 0.01 s"), queue.hold("b"):
            pass
    with queue.hold("b"):
        pass


def test_a_body_that_raises_gives_back_its_slot() -> None:
    queue = fair_queue(Waiters(), capacity=0)
    with pytest.raises(ValueError), queue.hold("a"):
        raise ValueError("the query failed")
    with queue.hold("a"):  # with no room to wait, only a free slot lets it in
        pass


class Interrupted(Exception):
    """What a request's thread may meet while it waits: an interrupt, a failing gauge."""


class FailingWaiters(Waiters):
    """A gauge that fails the first time a request starts to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def inc(self) -> None:
        if not self.failed:
            self.failed = True
            raise Interrupted
        super().inc()


def test_a_waiter_interrupted_gives_back_its_place() -> None:
    """Whatever is raised while a request waits takes it out of the queue: the one place to
    wait is free again for the next."""
    waiters = FailingWaiters()
    queue = fair_queue(waiters, capacity=1)
    with holding(queue, "a"):
        with pytest.raises(Interrupted), queue.hold("b"):
            pass
        other = Holder(queue, "c")
        waiters.reach(1)
    assert other.entered.wait(PATIENCE_S)
    other.finish()
    assert other.refused is None
    with queue.hold("b"):
        pass


def test_a_request_whose_sender_went_away_gives_its_place_up_at_once() -> None:
    waiters = Waiters()
    queue = fair_queue(waiters, per_principal_waiting=1)
    with holding(queue, "a"):
        gone = threading.Event()
        left = Holder(queue, "a", gone=gone)
        waiters.reach(1)
        with pytest.raises(Busy), queue.hold("a"):  # its principal's one place is taken
            pass
        queue.went_away(gone)
        waiters.reach(0)  # given up now, not at its deadline
        left.finish()
        assert left.refused is not None and not left.entered.is_set()
        stays = Holder(queue, "a")  # the place is free for a sender still there
        waiters.reach(1)
    assert stays.entered.wait(PATIENCE_S)
    stays.finish()
    assert stays.refused is None and waiters.count == 0
