"""A bounded, fair queue with a deadline for work that runs on request threads (queries, job
submissions, twin downloads), so one principal can neither hold every slot nor fill the
queue for everyone. Jobs, which run on threads of their own, queue in services/job_queue.py."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from services.errors import Busy


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
    admitted: bool = False
    # Its place went to a principal with fewer waiting, the queue being full.
    displaced: bool = False


class FairQueue:
    """At most `slots` requests run at once, at most `per_principal` of one principal's; the
    rest wait, at most `capacity` in all and `per_principal_waiting` of one principal's, each
    for at most `wait_s` seconds. Past a bound or the deadline a request is refused with Busy.

    A slot that frees goes to the waiting principal with the fewest running, ties to the one
    whose last turn is oldest (one yet to have a turn first), so a principal with many waiting
    requests takes turns with one that has a single request. A principal's own requests run
    in the order they came. When the queue is full, a request of a principal with fewer waiting
    takes the place of the newest request of the principal with the most, so that several
    accounts, each within its share, cannot fill the queue for everyone else."""

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
        self._running: Counter[str] = Counter()
        self._waiting: list[_Ticket] = []  # in the order they came
        self._turns = itertools.count()
        self._last_turn: dict[str, int] = {}  # of principals running or waiting
        self._changed = threading.Condition()

    @property
    def threads_at_most(self) -> int:
        """Request threads this queue may hold at once: those running and those waiting."""
        return self.slots + self.capacity

    @contextmanager
    def hold(self, principal_id: str) -> Iterator[None]:
        """Run the body in a slot once one is free for `principal_id`; Busy if the queue has
        no room for it or none frees within `wait_s`."""
        self._enter(principal_id)
        try:
            yield
        finally:
            with self._changed:
                self._leave(principal_id)

    def _enter(self, principal: str) -> None:
        with self._changed:
            ticket = _Ticket(principal)
            self._waiting.append(ticket)
            self._admit()
            if ticket.admitted:
                self._observe_wait(0.0)
                return
            full = self._no_room_for(principal)
            if full is not None:
                self._withdraw(ticket)
                raise Busy(full)
            self._wait(ticket)

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

    def _wait(self, ticket: _Ticket) -> None:
        """Wait (holding the lock's condition) until admitted; on the deadline, or anything
        raised while waiting (an interrupt), give up the place, or the slot just given."""
        started = time.monotonic()
        counted = False  # on the gauge: a failure before it is counted must not uncount it
        try:
            if self._waiting_gauge is not None:
                self._waiting_gauge.inc()
                counted = True
            if not self._changed.wait_for(lambda: ticket.admitted or ticket.displaced, self.wait_s):
                raise Busy(f"no slot for {self.what} came free within {self.wait_s:g} s; try again")
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
            self._observe_wait(time.monotonic() - started)

    def _observe_wait(self, seconds: float) -> None:
        if self._waited is not None:
            self._waited.observe(seconds)

    def _leave(self, principal: str) -> None:
        self._running[principal] -= 1
        if not self._running[principal]:
            del self._running[principal]
        self._forget_if_idle(principal)
        self._admit()

    def _withdraw(self, ticket: _Ticket) -> None:
        self._waiting.remove(ticket)
        self._forget_if_idle(ticket.principal)

    def _forget_if_idle(self, principal: str) -> None:
        waiting = any(t.principal == principal for t in self._waiting)
        if not waiting and principal not in self._running:
            self._last_turn.pop(principal, None)

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
        for arrival, ticket in enumerate(self._waiting):
            principal = ticket.principal
            running = self._running[principal]
            if principal in firsts or running >= self.per_principal:
                continue
            firsts[principal] = (running, self._last_turn.get(principal, -1), arrival, ticket)
        if not firsts:
            return None
        return min(firsts.values(), key=lambda first: first[:3])[3]
