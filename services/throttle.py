"""A bounded, fair queue with a deadline for work that runs on request threads (queries, job
submissions, twin downloads), so one principal can neither hold every slot nor fill the
queue for everyone; with shared slots, a principal's limit holds across every process that
shares them. Jobs, which run on threads of their own, queue in services/job_queue.py."""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from services.errors import Busy
from services.shared_slots import SharedSlots, Slot

# How soon a request whose principal held every shared slot tries again: a slot given back in
# this process is seen at once, one given back in another process within this.
SHARED_RETRY_S = 0.1


class Level(Protocol):
    """How many wait now: a gauge."""

    def inc(self) -> None: ...
    def dec(self) -> None: ...


class Spread(Protocol):
    """How long each waited: a histogram."""

    def observe(self, amount: float) -> None: ...


@dataclass(eq=False)
class _Ticket:
    """One request waiting for a slot; `admitted` once a slot is its own."""

    principal: str
    # Its place in the order requests came, kept when it goes back to wait.
    arrival: int
    admitted: bool = False
    # Its place went to a principal with fewer waiting, the queue being full.
    displaced: bool = False
    # It had to wait at least once: its wait is observed from its arrival.
    waited: bool = False


def _arrival(ticket: _Ticket) -> int:
    return ticket.arrival


class FairQueue:
    """At most `slots` requests run at once, at most `per_principal` of one principal's; the
    rest wait, at most `capacity` in all and `per_principal_waiting` of one principal's, each
    for at most `wait_s` seconds. Past a bound or the deadline a request is refused with Busy.

    A slot that frees goes to the waiting principal with the fewest running, ties to the one
    whose last turn is oldest (one yet to have a turn first), so a principal with many waiting
    requests takes turns with one that has a single request. A principal's own requests run
    in the order they came. When the queue is full, a request of a principal with fewer waiting
    takes the place of the newest request of the principal with the most, so that several
    accounts, each within its share, cannot fill the queue for everyone else.

    With `shared` slots, a request given a slot here must also take one of its principal's
    shared slots, held by every process at once at most `shared.per_principal`. If all are
    taken (in other processes) it gives this process's slot to the next in turn at once and
    waits again in its place, its principal passed over for `retry_s`, then tries again
    when its turn comes back; so a principal at its limit elsewhere holds no slot here that
    others could use, and its requests still count against the queue's bounds and deadline."""

    def __init__(
        self,
        *,
        slots: int,
        per_principal: int,
        capacity: int,
        per_principal_waiting: int,
        wait_s: float,
        what: str,
        waiting: Level | None = None,
        waited: Spread | None = None,
        shared: SharedSlots | None = None,
        retry_s: float = SHARED_RETRY_S,
    ) -> None:
        if slots < 1 or per_principal < 1:
            raise ValueError("a queue needs at least one slot, and one per principal")
        self.slots = slots
        self.per_principal = per_principal
        self.capacity = capacity
        self.per_principal_waiting = per_principal_waiting
        self.wait_s = wait_s
        self.what = what
        self._waiting_gauge = waiting
        self._waited = waited
        self._shared = shared
        self.retry_s = retry_s
        self._running: Counter[str] = Counter()
        self._waiting: list[_Ticket] = []  # in the order they came
        self._arrivals = itertools.count()
        self._turns = itertools.count()
        # Principals whose shared slots were all taken at the last try: passed over until then.
        self._saturated: dict[str, float] = {}
        self._last_turn: dict[str, int] = {}  # of principals running or waiting
        self._changed = threading.Condition()

    @property
    def threads_at_most(self) -> int:
        """Request threads this queue may hold at once: those running and those waiting."""
        return self.slots + self.capacity

    @contextmanager
    def hold(self, principal_id: str, gone: threading.Event | None = None) -> Iterator[None]:
        """Run the body in a slot once one is free for `principal_id` (and one of its shared
        slots); Busy if the queue has no room for it or none frees within `wait_s`, or once
        `gone` is set while it waits (its sender went away: its place goes to others; set it
        through `went_away`)."""
        slot = self._enter(principal_id, gone)
        try:
            yield
        finally:
            try:
                if slot is not None:
                    slot.release()  # first: a request of its principal waiting here goes next
            finally:
                with self._changed:
                    self._leave(principal_id)

    def went_away(self, gone: threading.Event) -> None:
        """Set `gone`, given to `hold` by a request whose sender went away, and wake the
        waiting, so that request gives its place up now rather than at its deadline."""
        with self._changed:
            gone.set()
            self._changed.notify_all()

    def close(self) -> None:
        """Give back what the shared slots hold open (their PostgreSQL connections)."""
        if self._shared is not None:
            self._shared.close()

    def _enter(self, principal: str, gone: threading.Event | None) -> Slot | None:
        started = time.monotonic()
        deadline = started + self.wait_s
        with self._changed:
            ticket = self._arrive(principal)
        try:
            while True:
                with self._changed:
                    self._wait(ticket, deadline, gone)
                if self._shared is None:
                    return None
                slot = self._take_shared(ticket)
                if slot is not None:
                    return slot
        finally:
            # Not a request refused for want of room to wait, as at its arrival.
            if ticket.admitted or ticket.waited:
                self._observe_wait(time.monotonic() - started if ticket.waited else 0.0)

    def _arrive(self, principal: str) -> _Ticket:
        """A new request: given a slot if one is free for it, else a place to wait; Busy at
        once if there is no room for it to wait."""
        ticket = _Ticket(principal, next(self._arrivals))
        self._waiting.append(ticket)
        self._admit()
        if not ticket.admitted:
            full = self._no_room_for(principal)
            if full is not None:
                self._withdraw(ticket)
                raise Busy(full)
        return ticket

    def _take_shared(self, ticket: _Ticket) -> Slot | None:
        """One of the principal's shared slots for an admitted request; if none is free, its
        slot here is given up and it waits again (or is refused if there is no room)."""
        assert self._shared is not None
        try:
            slot = self._shared.take(ticket.principal)
        except BaseException:
            with self._changed:
                self._leave(ticket.principal)
            raise
        if slot is None:
            with self._changed:
                self._step_aside(ticket)
        return slot

    def _step_aside(self, ticket: _Ticket) -> None:
        """Give the slot of a request whose principal has no shared slot free to the next in
        turn; put the request back in its place, its principal passed over for a while."""
        principal = ticket.principal
        ticket.admitted = False
        self._running[principal] -= 1
        if not self._running[principal]:
            del self._running[principal]
        self._saturated[principal] = time.monotonic() + self.retry_s
        bisect.insort(self._waiting, ticket, key=_arrival)
        full = self._no_room_for(principal)
        if full is not None:
            self._withdraw(ticket)
        self._admit()
        if full is not None:
            raise Busy(full)

    def _no_room_for(self, principal: str) -> str | None:
        """Why a request that must wait cannot (it is already counted), or None; in a full
        queue it may take the place of the newest request of a principal with more waiting."""
        if sum(t.principal == principal for t in self._waiting) > self.per_principal_waiting:
            return (
                f"at most {self.per_principal_waiting} {self.what} of one principal may wait"
                " at once; try again later"
            )
        if len(self._waiting) > self.capacity:
            displaced = self._displaceable(principal)
            if displaced is None:
                return f"at most {self.capacity} {self.what} may wait at once; try again later"
            self._waiting.remove(displaced)
            displaced.displaced = True
            self._changed.notify_all()
        return None

    def _displaceable(self, principal: str) -> _Ticket | None:
        """The newest request of the principal with the most waiting, if that is more than
        `principal` has waiting (its new request included)."""
        waiting = Counter(t.principal for t in self._waiting)
        heaviest = max(
            (other for other in waiting if other != principal), key=waiting.get, default=None
        )
        if heaviest is None or waiting[heaviest] <= waiting[principal]:
            return None
        return next(t for t in reversed(self._waiting) if t.principal == heaviest)

    def _wait(self, ticket: _Ticket, deadline: float, gone: threading.Event | None) -> None:
        """Wait (holding the lock's condition) until admitted; on the deadline, or anything
        raised while waiting (an interrupt), give up the place, or the slot just given."""
        if ticket.admitted:
            return
        ticket.waited = True
        counted = False  # on the gauge: a failure before it is counted must not uncount it
        try:
            if self._waiting_gauge is not None:
                self._waiting_gauge.inc()
                counted = True
            while True:
                now = time.monotonic()
                until = self._passed_over_until(ticket.principal, now)
                if ticket.admitted or ticket.displaced:
                    break
                if gone is not None and gone.is_set():
                    raise Busy("the request's sender went away while it waited")
                if now >= deadline:
                    raise Busy(
                        f"no slot for {self.what} came free within {self.wait_s:g} s; try again"
                    )
                self._changed.wait(min(until, deadline) - now)
            if ticket.displaced:
                raise Busy(
                    f"the queue for {self.what} is full and this request, the newest of the "
                    "principal with the most waiting, gave its place up; try again later"
                )
        except BaseException:
            if ticket.admitted:
                self._leave(ticket.principal)
            elif ticket.displaced:
                self._forget_if_idle(ticket.principal)
            else:
                self._withdraw(ticket)
            raise
        finally:
            if counted:
                self._waiting_gauge.dec()

    def _passed_over_until(self, principal: str, now: float) -> float:
        """Until when `principal` is passed over for having had no shared slot free (inf if
        it is not); once that is over, its turn may come again."""
        until = self._saturated.get(principal)
        if until is None:
            return float("inf")
        if until > now:
            return until
        del self._saturated[principal]
        self._admit()
        return float("inf")

    def _observe_wait(self, seconds: float) -> None:
        if self._waited is not None:
            self._waited.observe(seconds)

    def _leave(self, principal: str) -> None:
        self._running[principal] -= 1
        if not self._running[principal]:
            del self._running[principal]
        # Its shared slot, if it had one, was just given back: its waiters here try at once.
        self._saturated.pop(principal, None)
        self._forget_if_idle(principal)
        self._admit()

    def _withdraw(self, ticket: _Ticket) -> None:
        self._waiting.remove(ticket)
        self._forget_if_idle(ticket.principal)

    def _forget_if_idle(self, principal: str) -> None:
        waiting = any(t.principal == principal for t in self._waiting)
        if not waiting and principal not in self._running:
            self._last_turn.pop(principal, None)
            self._saturated.pop(principal, None)

    def _admit(self) -> None:
        """Give every free slot to the next in turn; wake the waiters to see whose it is."""
        admitted = False
        while sum(self._running.values()) < self.slots:
            ticket = self._next()
            if ticket is None:
                break
            self._waiting.remove(ticket)
            ticket.admitted = True
            self._running[ticket.principal] += 1
            self._last_turn[ticket.principal] = next(self._turns)
            admitted = True
        if admitted:
            self._changed.notify_all()

    def _next(self) -> _Ticket | None:
        """Each principal's oldest waiting request, of those under their share: the one whose
        principal runs fewest, then had its last turn longest ago, then came first."""
        firsts: dict[str, tuple[int, int, int, _Ticket]] = {}
        now = time.monotonic() if self._saturated else 0.0
        for arrival, ticket in enumerate(self._waiting):
            principal = ticket.principal
            running = self._running[principal]
            if principal in firsts or running >= self.per_principal:
                continue
            if self._saturated.get(principal, now) > now:
                continue
            firsts[principal] = (running, self._last_turn.get(principal, -1), arrival, ticket)
        if not firsts:
            return None
        return min(firsts.values(), key=lambda first: first[:3])[3]
