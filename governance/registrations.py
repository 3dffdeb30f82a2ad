"""The registration procedure (数据资产登记): an asset's first, change, cancellation and
revocation registrations, each from the memo book through application, initial review,
re-review and public notice to a registration code. One transition function says which step
may follow which; who may take a step is the policy's to decide."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from database.turns import prepare_turn, writers_turn
from governance.errors import ControlError, NotFound
from governance.tables import registrations


class Kind(StrEnum):
    FIRST = "first"
    CHANGE = "change"
    CANCELLATION = "cancellation"
    REVOCATION = "revocation"


class State(StrEnum):
    DRAFT = "draft"  # in the memo book (资产备查簿): not yet applied for
    APPLIED = "applied"
    REVIEWED = "initially_reviewed"
    RE_REVIEWED = "re_reviewed"
    NOTICE = "under_notice"
    REGISTERED = "registered"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Step(StrEnum):
    APPLY = "apply"
    REVIEW = "review"
    RE_REVIEW = "re_review"
    PUBLISH = "publish"
    OBJECT = "object"
    RESOLVE = "resolve"
    REGISTER = "register"
    REJECT = "reject"
    WITHDRAW = "withdraw"


ENDED = frozenset({State.REGISTERED, State.REJECTED, State.WITHDRAWN})
UNDER_WAY = frozenset(State) - ENDED
# Documents an application for a first or change registration must carry.
REQUIRED_ATTACHMENTS = ("legal_opinion", "valuation_report")

_NEXT: dict[tuple[State, Step], State] = {
    (State.DRAFT, Step.APPLY): State.APPLIED,
    (State.APPLIED, Step.REVIEW): State.REVIEWED,
    (State.REVIEWED, Step.RE_REVIEW): State.RE_REVIEWED,
    (State.RE_REVIEWED, Step.PUBLISH): State.NOTICE,
    (State.NOTICE, Step.OBJECT): State.NOTICE,
    (State.NOTICE, Step.RESOLVE): State.NOTICE,
    (State.NOTICE, Step.REGISTER): State.REGISTERED,
    **{(state, Step.REJECT): State.REJECTED for state in UNDER_WAY - {State.DRAFT}},
    **{(state, Step.WITHDRAW): State.WITHDRAWN for state in UNDER_WAY},
}


class StepRefused(ControlError):
    """A step the registration's state or facts do not allow now; `rule` names why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Attachment:
    """A document filed with an application: its kind, name, size and content hash."""

    kind: str
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Objection:
    id: str
    by: str
    text: str
    at: str
    # None while open; "upheld" or "dismissed" once a supervisor resolved it.
    outcome: str | None = None


@dataclass(frozen=True)
class Registration:
    id: str
    asset: str
    kind: Kind
    state: State
    holder: str
    applicant: str
    version: int
    card_sha256: str
    created_at: str
    attachments: tuple[Attachment, ...] = ()
    objections: tuple[Objection, ...] = ()
    notice_until: str | None = None
    code: str | None = None
    certificate: str | None = None
    # Each step taken: {"step", "by", "at", "state", "ledger_index"?, "note"?}.
    history: tuple[dict, ...] = field(default=(), compare=False)

    @property
    def open_objections(self) -> list[Objection]:
        return [o for o in self.objections if o.outcome is None]


def advance(
    registration: Registration, step: Step, now: datetime, *, upheld: bool | None = None
) -> State:
    """The state `step` leads to from `registration`'s, or StepRefused saying why not."""
    following = _NEXT.get((registration.state, step))
    if following is None:
        raise StepRefused(
            "step_not_allowed", f"a registration {registration.state.value} cannot {step.value}"
        )
    if step is Step.APPLY and registration.kind in (Kind.FIRST, Kind.CHANGE):
        filed = {attachment.kind for attachment in registration.attachments}
        missing = [kind for kind in REQUIRED_ATTACHMENTS if kind not in filed]
        if missing:
            raise StepRefused("attachment_missing", f"an application needs a {', '.join(missing)}")
    if step is Step.RESOLVE:
        if not registration.open_objections:
            raise StepRefused("no_open_objection", "no objection is open")
        if upheld:
            return State.REJECTED
    if step is Step.REGISTER:
        if registration.open_objections:
            raise StepRefused("objection_open", "an objection is still open")
        if registration.notice_until is None or now < datetime.fromisoformat(
            registration.notice_until
        ):
            raise StepRefused("notice_running", "the public notice period has not ended")
    return following


class RegistrationRecords:
    """Registrations in the control store; a step and its ledger record are one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        prepare_turn(engine)

    def get(self, registration_id: str) -> Registration:
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(registrations).where(registrations.c.id == registration_id)
            ).first()
        if row is None:
            raise NotFound("no such registration")
        return _registration(row)

    def all(self, asset: str | None = None) -> list[Registration]:
        query = sa.select(registrations).order_by(registrations.c.created_at, registrations.c.id)
        if asset is not None:
            query = query.where(registrations.c.asset == asset)
        with self.engine.connect() as db:
            return [_registration(row) for row in db.execute(query)]

    def statuses(self) -> dict[str, str]:
        """Each asset that entered the procedure: `active` once registered (and not cancelled
        or revoked since), else `unregistered` or `deregistered`. An asset that never entered
        it is not listed (assets registered before the procedure existed)."""
        query = sa.select(registrations.c.asset, registrations.c.kind, registrations.c.state)
        with self.engine.connect() as db:
            # A registered one's last change is its registration: in that order, the newest
            # decides.
            rows = db.execute(query.order_by(registrations.c.updated_at)).all()
        status: dict[str, str] = {}
        for asset, kind, state in rows:
            current = status.get(asset, "unregistered")
            if state == State.REGISTERED.value:
                ending = kind in (Kind.CANCELLATION.value, Kind.REVOCATION.value)
                current = "deregistered" if ending else "active"
            status[asset] = current
        return status

    def create(self, registration: Registration, record: Callable[[Registration], None]) -> None:
        """Open a registration; one of the same asset still under way is a conflict."""
        try:
            with writers_turn(self.engine), self.engine.begin() as db:
                under_way = db.execute(
                    sa.select(registrations.c.id).where(
                        registrations.c.asset == registration.asset,
                        registrations.c.state.in_([state.value for state in UNDER_WAY]),
                    )
                ).first()
                if under_way is not None:
                    raise StepRefused(
                        "registration_under_way", "the asset has a registration under way"
                    )
                db.execute(registrations.insert().values(**_row(registration)))
                record(registration)
        except IntegrityError as error:
            raise ControlError("this registration was opened at the same time") from error

    def update(
        self,
        before: Registration,
        after: Registration,
        record: Callable[[Registration], tuple[Registration, dict]],
    ) -> Registration:
        """Replace `before` with `after` if no other step came in between; `record` writes the
        step's ledger entry inside the transaction and returns the registration as it then
        stands (a registration gets its code and certificate there) and what the history keeps
        of the step."""
        with writers_turn(self.engine), self.engine.begin() as db:
            after, kept = record(after)
            after = replace(after, history=(*after.history, kept))
            changed = db.execute(
                registrations.update()
                .where(
                    registrations.c.id == before.id,
                    registrations.c.updated_at == _updated(before),
                    registrations.c.state == before.state.value,
                )
                .values(**_row(after))
            )
            if changed.rowcount != 1:
                raise StepRefused("step_raced", "another step was taken at the same time")
        return after


def _updated(registration: Registration) -> str:
    return registration.history[-1]["at"] if registration.history else registration.created_at


def _row(registration: Registration) -> dict:
    return {
        "id": registration.id,
        "asset": registration.asset,
        "kind": registration.kind.value,
        "state": registration.state.value,
        "holder": registration.holder,
        "applicant": registration.applicant,
        "version": registration.version,
        "card_sha256": registration.card_sha256,
        "attachments": json.dumps([a.__dict__ for a in registration.attachments]),
        "objections": json.dumps([o.__dict__ for o in registration.objections]),
        "notice_until": registration.notice_until,
        "code": registration.code,
        "certificate": registration.certificate,
        "history": json.dumps(list(registration.history)),
        "created_at": registration.created_at,
        "updated_at": _updated(registration),
    }


def _registration(row: sa.Row) -> Registration:
    return Registration(
        id=row.id,
        asset=row.asset,
        kind=Kind(row.kind),
        state=State(row.state),
        holder=row.holder,
        applicant=row.applicant,
        version=row.version,
        card_sha256=row.card_sha256,
        created_at=row.created_at,
        attachments=tuple(Attachment(**a) for a in json.loads(row.attachments)),
        objections=tuple(Objection(**o) for o in json.loads(row.objections)),
        notice_until=row.notice_until,
        code=row.code,
        certificate=row.certificate,
        history=tuple(json.loads(row.history)),
    )
