"""Refusals watched and bounded: a principal refused again and again within a short window is
probing (a spike), and past its rate its further refusals are counted into summary entries
per window instead of each being appended, so refused requests cannot grow the ledger without
bound, and none of them hides from the provider of an asset it names."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger import parties
from ledger.usage import REFUSALS_SUMMARISED

log = logging.getLogger(__name__)

# Principals followed at once; the least recently refused is forgotten first.
MAX_PRINCIPALS = 10_000
# Spikes kept for the overseers' page, newest last.
RECENT_SPIKES = 50
# Party groups (the assets, or the grant, a refusal's entry names) one principal's window keeps
# apart. A refusal naming yet others is counted in the group of the first registered asset it
# names (and noted in each other one's group), so every provider it concerns still reads of it;
# one naming no registered asset is folded into the group that names no party.
MAX_GROUPS = 16
# How a refusal's entry marks the assets it names that are registered (or destroyed, whose use
# stays their provider's to trace); any other asset is an id the caller chose (a card it sent),
# which must not open a group of its own past MAX_GROUPS.
REGISTERED_STATUSES = frozenset({"active", "suspended", "destroyed"})
# Reason codes one row of a summary keeps apart; any further code counts as OTHER_REASON.
MAX_REASONS = 64
OTHER_REASON = "other"
# The footprint of the group that names no party: readable by the principal and overseers.
NO_PARTY: tuple[tuple[str, ...], str | None] = ((), None)
# Groups held at once, open or waiting to be written; past it, refusals are appended one by one.
MAX_HELD_GROUPS = 100_000
# How long summaries the ledger could not take wait before they are tried again.
RETRY_S = 5.0
# The scope of a query's refusal, the one refusal entry that does not name its scope.
QUERY_SCOPE = "query:run"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Write = Callable[[dict, str], object]


class RefusalWatch:
    """Counts each principal's refusals over the last `window_s` seconds and says when one
    goes past `limit`: once per spike, again only after it has fallen back within the limit."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._refusals: OrderedDict[str, deque[float]] = OrderedDict()
        self._spiking: set[str] = set()
        self._recent: deque[tuple[str, float]] = deque(maxlen=RECENT_SPIKES)
        self._lock = threading.Lock()
        self._summaries: RefusalSummaries | None = None

    def refused(self, principal: str) -> bool:
        """Note one refusal; True when it takes `principal` past the limit."""
        now = self._clock()
        with self._lock:
            times = self._refusals.pop(principal, None) or deque(maxlen=self._limit + 1)
            self._refusals[principal] = times
            times.append(now)
            while times and times[0] <= now - self._window_s:
                times.popleft()
            if len(self._refusals) > MAX_PRINCIPALS:
                forgotten, _ = self._refusals.popitem(last=False)
                self._spiking.discard(forgotten)
            if len(times) <= self._limit:
                self._spiking.discard(principal)
                return False
            if principal in self._spiking:
                return False
            self._spiking.add(principal)
            self._recent.append((principal, time.time()))
            return True

    def recent(self) -> list[tuple[str, float]]:
        """The latest spikes this process saw: who, and when (Unix time)."""
        with self._lock:
            return list(self._recent)

    def summarising(self, limit: int, window_s: int, write: Write) -> RefusalSummaries:
        """This process's refusal summaries, made on first use with these settings."""
        with self._lock:
            if self._summaries is None:
                self._summaries = RefusalSummaries(limit, window_s, write)
            return self._summaries

    def close(self) -> None:
        """Write every summary still open; refusals after this are appended one by one."""
        with self._lock:
            summaries = self._summaries
        if summaries is not None:
            summaries.close()


@dataclass(frozen=True)
class Refusal:
    """One refusal as a summary counts it: stable codes, and the parties its entry names."""

    principal: str
    record: str  # the entry's type: `access_denied`, `query`
    scope: str
    outcome: str  # `denied` or `rejected`
    reasons: tuple[str, ...]
    assets: tuple[str, ...] = ()
    grant: str | None = None
    # The named assets known to be in the catalogue, so to have a provider: never more of them
    # than there are assets, whatever the caller sends.
    registered: tuple[str, ...] = ()

    @property
    def footprint(self) -> tuple[tuple[str, ...], str | None]:
        return self.assets, self.grant


def refusal_of(entry: dict, outcome: str, reasons: Iterable[str]) -> Refusal | None:
    """What a summary counts of a refusal's `entry`; None for an entry naming parties a
    summary could not name alike (it is then appended, so its readers stay the same)."""
    named = parties(entry)
    principal = entry.get("principal")
    if named.public or named.principals != {principal} or len(named.grants) > 1:
        return None
    assets = tuple(sorted(named.assets))
    unregistered = _unregistered(entry)
    return Refusal(
        principal=str(principal),
        record=str(entry.get("type")),
        scope=str(entry.get("scope") or QUERY_SCOPE),
        outcome=outcome,
        reasons=tuple(reasons),
        assets=assets,
        grant=next(iter(named.grants), None),
        registered=tuple(asset for asset in assets if asset not in unregistered),
    )


def _unregistered(entry: dict) -> set[str]:
    """Assets a refusal's entry names as the caller described them (a card being registered),
    not as the catalogue holds them. Every other asset an entry names comes from the
    catalogue: the guard's analysis, a grant's assets, a registered card."""
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        return set()
    return {
        str(asset.get("id"))
        for asset in resource.get("assets") or ()
        if isinstance(asset, dict) and asset.get("status") not in REGISTERED_STATUSES
    }


@dataclass
class _Row:
    refusals: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class _Group:
    """The refusals of one principal's window whose entries would name the same parties."""

    key: str
    start: int
    end: int
    assets: tuple[str, ...]
    grant: str | None
    rows: dict[tuple[str, str, str], _Row] = field(default_factory=dict)
    refusals: int = 0
    folded: int = 0
    # Refusals naming this group's asset that another group counts (one naming several assets
    # is counted once, in the group of the first): so its provider still reads of them.
    shared: int = 0

    def add(self, refusal: Refusal, folded: bool) -> None:
        row = self.rows.setdefault((refusal.record, refusal.scope, refusal.outcome), _Row())
        row.refusals += 1
        for reason in dict.fromkeys(refusal.reasons):
            kept = reason in row.reasons or len(row.reasons) < MAX_REASONS
            row.reasons[reason if kept else OTHER_REASON] += 1
        self.refusals += 1
        self.folded += folded

    def entry(self, principal: str, limit: int) -> dict:
        """The summary's ledger entry: the same parties as the entries it stands for."""
        entry: dict = {
            "type": REFUSALS_SUMMARISED,
            "principal": principal,
            "window": {"start": _stamp(self.start), "end": _stamp(self.end)},
            "at": _stamp(self.start),
            "limit": limit,
            "refusals": self.refusals,
            "counts": [
                {
                    "record": record,
                    "scope": scope,
                    "outcome": outcome,
                    "refusals": row.refusals,
                    "reasons": dict(sorted(row.reasons.items())),
                }
                for (record, scope, outcome), row in sorted(self.rows.items())
            ],
        }
        if self.assets:
            entry["assets"] = list(self.assets)
        elif self.grant is not None:
            entry["grant_id"] = self.grant
        if self.folded:
            entry["folded"] = self.folded
        if self.shared:
            entry["shared"] = self.shared
        return entry


@dataclass
class _Window:
    """One principal's current window: its refusals so far, and the groups past the limit."""

    start: int
    # The monotonic instant the window ends, so a clock stepped back cannot hold it open.
    deadline: float
    refusals: int = 0
    groups: dict[tuple[tuple[str, ...], str | None], _Group] = field(default_factory=dict)
    # Past MAX_GROUPS: one group per registered asset, so bounded by the catalogue.
    spilled: dict[str, _Group] = field(default_factory=dict)


class RefusalSummaries:
    """Past `limit` refusals of one principal within a window of `window_s` seconds (aligned
    on the clock), each further refusal is counted, not appended; when the window closes its
    counts are written as one entry per party group through `write(entry, idempotency_key)`.

    Windows are closed by a timer of their own, by the principal's next refusal, and by
    `close`. A summary the ledger refuses is kept and tried again under the same key, so it is
    written once. Counts of windows still open when the process dies are lost."""

    def __init__(
        self,
        limit: int,
        window_s: int,
        write: Write,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        timer: bool = True,
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._write = write
        self._clock = clock
        self._monotonic = monotonic
        self._timer = timer
        # Keys are this process's own: another process's summary of the same window stands.
        self._token = uuid.uuid4().hex[:12]
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._due: deque[tuple[str, _Group]] = deque()
        self._held = 0
        self._closed = False
        self._retry_at: float | None = None
        self._changed = threading.Condition()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None

    def count(self, refusal: Refusal) -> bool:
        """Note one refusal; True when it was counted into a summary, so is not to be appended."""
        now, instant = self._clock(), self._monotonic()
        start = int(now // self._window_s) * self._window_s
        with self._changed:
            if self._closed:
                return False
            window = self._windows.pop(refusal.principal, None)
            # A clock stepped back (start < window.start) keeps counting in the open window.
            if window is not None and (start > window.start or instant >= window.deadline):
                self._retire(refusal.principal, window)
                window = None
            if window is None:
                window = _Window(start, instant + start + self._window_s - now)
            self._windows[refusal.principal] = window
            while len(self._windows) > MAX_PRINCIPALS:
                self._retire(*self._windows.popitem(last=False))
            window.refusals += 1
            if window.refusals <= self._limit:
                return False
            return self._place(refusal, window)

    def flush(self, everything: bool = False) -> int:
        """Write the summaries of the windows that have ended (with `everything`, of all);
        the number written. One the ledger refuses stays, to be written later."""
        with self._flushing:
            with self._changed:
                instant = self._monotonic()
                for principal, window in list(self._windows.items()):
                    if everything or instant >= window.deadline:
                        del self._windows[principal]
                        self._retire(principal, window)
                batch = list(self._due)
            written = 0
            for principal, group in batch:
                try:
                    self._write(group.entry(principal, self._limit), group.key)
                except Exception:  # noqa: BLE001 - kept and tried again under the same key
                    log.exception("a refusal summary could not be written; it is kept")
                    with self._changed:
                        self._retry_at = self._monotonic() + RETRY_S
                    return written
                with self._changed:
                    self._due.popleft()  # only flushes take from the front, one at a time
                    self._held -= 1
                    self._retry_at = None
                written += 1
            return written

    def close(self) -> None:
        """Count no more, and write every summary held, open or not."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.flush(everything=True)
        with self._changed:
            for principal, group in self._due:
                log.error(
                    "refusal summary lost at shutdown: %d refusals of principal %s",
                    group.refusals,
                    principal,
                )

    def held(self) -> int:
        """Groups held now, open or waiting to be written."""
        with self._changed:
            return self._held

    def _place(self, refusal: Refusal, window: _Window) -> bool:
        """Count `refusal` in its window's groups, opening what it needs; False when they may
        not be opened (the refusal is then appended)."""
        footprint = refusal.footprint
        group = window.groups.get(footprint)
        if group is None and len(window.groups) < MAX_GROUPS:
            group = self._open(refusal.principal, window, footprint)
            if group is None:
                return False
        if group is not None:
            group.add(refusal, folded=False)
            return True
        if not refusal.registered:
            group = window.groups.get(NO_PARTY) or self._open(refusal.principal, window, NO_PARTY)
            if group is None:
                return False
            group.add(refusal, folded=True)
            return True
        # Past the cap, a refusal naming registered assets still reaches their providers: counted
        # once, in the group of the first, and noted in each other one's.
        missing = sum(_asset_group(window, asset) is None for asset in refusal.registered)
        if self._held + missing > MAX_HELD_GROUPS:
            return False
        first, *others = [
            _asset_group(window, asset) or self._spill(refusal.principal, window, asset)
            for asset in refusal.registered
        ]
        first.add(refusal, folded=True)
        for group in others:
            group.shared += 1
        return True

    def _open(
        self, principal: str, window: _Window, footprint: tuple[tuple[str, ...], str | None]
    ) -> _Group | None:
        """A new group of `window` for the parties of `footprint`; None when no more may be
        held."""
        if self._held >= MAX_HELD_GROUPS:
            return None
        group = self._new_group(principal, window, footprint)
        window.groups[footprint] = group
        return group

    def _spill(self, principal: str, window: _Window, asset: str) -> _Group:
        """A new group of `window` past MAX_GROUPS, naming `asset` alone (the caller has made
        sure it may be held)."""
        group = self._new_group(principal, window, ((asset,), None))
        window.spilled[asset] = group
        return group

    def _new_group(
        self, principal: str, window: _Window, footprint: tuple[tuple[str, ...], str | None]
    ) -> _Group:
        start = window.start
        stamp = _stamp(start)
        # A nonce, not a count: a number shared by every principal's groups would tell the
        # principal reading its summary how many groups others opened in between.
        key = f"refusals:{principal}:{stamp}:{self._token}:{secrets.token_hex(8)}"
        group = _Group(key, start, start + self._window_s, *footprint)
        self._held += 1
        self._wake()
        return group

    def _retire(self, principal: str, window: _Window) -> None:
        """Freeze a window that has closed: its groups wait, in order, to be written."""
        groups = [*window.groups.values(), *window.spilled.values()]
        self._due.extend((principal, group) for group in groups)
        if groups:
            self._wake()

    def _wake(self) -> None:
        if self._timer and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="refusal-summaries", daemon=True)
            self._thread.start()
        self._changed.notify_all()

    def _run(self) -> None:
        """Write each window's summaries as it ends (and retry those the ledger refused)."""
        while True:
            with self._changed:
                wait = self._next_wait()
                if not self._closed and (wait is None or wait > 0):
                    self._changed.wait(wait)
                if self._closed:
                    return
            self.flush()

    def _next_wait(self) -> float | None:
        """Seconds until there may be something to write; None: nothing held."""
        instant = self._monotonic()
        ends = [
            window.deadline for window in self._windows.values() if window.groups or window.spilled
        ]
        if self._due:
            ends.append(self._retry_at if self._retry_at is not None else instant)
        return max(0.0, min(ends) - instant) if ends else None


def _asset_group(window: _Window, asset: str) -> _Group | None:
    """The group of `window` naming `asset` alone, if there is one."""
    return window.groups.get(((asset,), None)) or window.spilled.get(asset)


def _stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(TIME_FORMAT)
