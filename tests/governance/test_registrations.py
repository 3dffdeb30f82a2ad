"""The registration procedure's transition function: every step from every state, the facts a
step needs (documents, the notice period, no open objection), and the one path to registered."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from governance.registrations import (
    ENDED,
    Attachment,
    Kind,
    Objection,
    Registration,
    State,
    Step,
    StepRefused,
    advance,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DOCUMENTS = (
    Attachment("legal_opinion", "opinion.pdf", "a" * 64, 10),
    Attachment("valuation_report", "valuation.pdf", "b" * 64, 10),
)
DRAFT = Registration(
    id="reg_1", asset="city.parks", kind=Kind.FIRST, state=State.DRAFT, holder="city-hospital",
    applicant="city-hospital", version=1, card_sha256="c" * 64, created_at=NOW.isoformat(),
    attachments=DOCUMENTS,
)  # fmt: skip
# The one path from the memo book to the register, and the state each step leads to.
PATH = [
    (Step.APPLY, State.APPLIED),
    (Step.REVIEW, State.REVIEWED),
    (Step.RE_REVIEW, State.RE_REVIEWED),
    (Step.PUBLISH, State.NOTICE),
    (Step.REGISTER, State.REGISTERED),
]


def _at(state: State, **changes: object) -> Registration:
    notice = (NOW - timedelta(seconds=1)).isoformat() if state is State.NOTICE else None
    return replace(DRAFT, state=state, **{"notice_until": notice, **changes})


def test_the_path_leads_from_the_memo_book_to_the_register() -> None:
    registration = DRAFT
    for step, expected in PATH:
        state = advance(registration, step, NOW)
        assert state is expected
        registration = _at(state)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("step", list(Step))
def test_no_step_leaves_its_place_in_the_path(state: State, step: Step) -> None:
    """A step is allowed only where the path, an objection, a rejection or a withdrawal has
    it; an ended registration takes none."""
    registration = _at(state, objections=(Objection("o1", "analyst", "x", NOW.isoformat()),))
    expected = {
        (State(s), p) for s, p in [("draft", Step.APPLY), ("applied", Step.REVIEW),
                                    ("initially_reviewed", Step.RE_REVIEW),
                                    ("re_reviewed", Step.PUBLISH)]
    }  # fmt: skip
    allowed = (
        (state, step) in expected
        or (state is State.NOTICE and step in (Step.OBJECT, Step.RESOLVE))
        or (step is Step.REJECT and state not in ENDED and state is not State.DRAFT)
        or (step is Step.WITHDRAW and state not in ENDED)
    )
    if allowed:
        assert advance(registration, step, NOW, upheld=False) in State
    else:
        with pytest.raises(StepRefused):
            advance(registration, step, NOW, upheld=False)


def test_an_application_carries_the_opinion_and_the_valuation() -> None:
    for kept in ((), DOCUMENTS[:1], DOCUMENTS[1:]):
        with pytest.raises(StepRefused) as refused:
            advance(replace(DRAFT, attachments=kept), Step.APPLY, NOW)
        assert refused.value.rule == "attachment_missing"
    # Cancelling or revoking a registration needs no valuation.
    for kind in (Kind.CANCELLATION, Kind.REVOCATION):
        assert advance(replace(DRAFT, kind=kind, attachments=()), Step.APPLY, NOW) is State.APPLIED


def test_registration_waits_for_the_notice_period_and_every_objection() -> None:
    running = _at(State.NOTICE, notice_until=(NOW + timedelta(days=7)).isoformat())
    with pytest.raises(StepRefused) as refused:
        advance(running, Step.REGISTER, NOW)
    assert refused.value.rule == "notice_running"
    assert advance(running, Step.REGISTER, NOW + timedelta(days=7)) is State.REGISTERED
    objected = _at(State.NOTICE, objections=(Objection("o1", "analyst", "x", NOW.isoformat()),))
    with pytest.raises(StepRefused) as refused:
        advance(objected, Step.REGISTER, NOW)
    assert refused.value.rule == "objection_open"
    dismissed = replace(
        objected, objections=(replace(objected.objections[0], outcome="dismissed"),)
    )
    assert advance(dismissed, Step.REGISTER, NOW) is State.REGISTERED


def test_an_upheld_objection_rejects_and_none_open_cannot_be_resolved() -> None:
    objected = _at(State.NOTICE, objections=(Objection("o1", "analyst", "x", NOW.isoformat()),))
    assert advance(objected, Step.RESOLVE, NOW, upheld=True) is State.REJECTED
    assert advance(objected, Step.RESOLVE, NOW, upheld=False) is State.NOTICE
    with pytest.raises(StepRefused) as refused:
        advance(_at(State.NOTICE), Step.RESOLVE, NOW)
    assert refused.value.rule == "no_open_objection"
