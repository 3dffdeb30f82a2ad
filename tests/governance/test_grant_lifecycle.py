"""A grant's life is one state machine: every move TRANSITIONS allows succeeds and is recorded,
every other move is refused and changes nothing (no HTTP server, the control store alone)."""

from __future__ import annotations

import pytest

from governance import SUPERVISOR_PARTY, ControlError, ControlStore, GrantStatus, SuspensionKind
from governance.grants import TRANSITIONS

BODY = {"developer": "dev", "assets": ["a.b"], "purpose": "research", "methods": ["sql"],
        "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"}  # fmt: skip


@pytest.fixture
def store(tmp_path) -> ControlStore:
    return ControlStore(f"sqlite:///{tmp_path / 'control.db'}")


def _grant_in(store: ControlStore, status: GrantStatus) -> str:
    """A new grant brought to `status` the way real use brings it there."""
    grant = store.create_grant(dict(BODY), ["prov", SUPERVISOR_PARTY])
    if status is GrantStatus.PENDING:
        return grant.id
    if status is GrantStatus.REJECTED:
        store.reject(grant.id, "prov", "prov", "not this purpose")
        return grant.id
    if status is GrantStatus.REVOKED:
        store.set_status(grant.id, GrantStatus.REVOKED, "dev", "no longer needed")
        return grant.id
    store.approve(grant.id, "prov", "prov")
    store.approve(grant.id, SUPERVISOR_PARTY, "sup")
    if status is GrantStatus.SUSPENDED:
        store.suspend(SuspensionKind.GRANT, grant.id, "investigation", "sup")
    elif status is GrantStatus.EXPIRED:
        assert [g.id for g in store.expire_due("2027-01-01T00:00:00Z")] == [grant.id]
    assert store.grant(grant.id).status is status
    return grant.id


@pytest.mark.parametrize("start", list(GrantStatus))
@pytest.mark.parametrize("target", list(GrantStatus))
def test_only_the_allowed_moves_happen(store: ControlStore, start, target) -> None:
    grant_id = _grant_in(store, start)
    events = len(store.history(grant_id))
    if target in TRANSITIONS.get(start, set()):
        moved = store.set_status(grant_id, target, "actor", "a reason")
        assert moved.status is target
        assert len(store.history(grant_id)) == events + 1
        assert store.history(grant_id)[-1]["by"] == "actor"
    else:
        with pytest.raises(ControlError):
            store.set_status(grant_id, target, "actor", "a reason")
        assert store.grant(grant_id).status is start
        assert len(store.history(grant_id)) == events


def test_a_grant_activates_only_when_every_party_has_approved(store: ControlStore) -> None:
    grant = store.create_grant(dict(BODY), ["prov", "other", SUPERVISOR_PARTY])
    assert store.approve(grant.id, "prov", "prov").status is GrantStatus.PENDING
    assert store.approve(grant.id, "prov", "prov").status is GrantStatus.PENDING  # no double
    assert store.approve(grant.id, SUPERVISOR_PARTY, "sup").status is GrantStatus.PENDING
    assert store.approve(grant.id, "other", "other").status is GrantStatus.ACTIVE
    events = [e["event"] for e in store.history(grant.id)]
    assert events == ["requested", "approved", "approved", "approved", "activated"]
    with pytest.raises(ControlError):
        store.approve(grant.id, "prov", "prov")  # no longer pending


def test_a_party_not_required_cannot_approve_or_reject(store: ControlStore) -> None:
    grant = store.create_grant(dict(BODY), ["prov", SUPERVISOR_PARTY])
    with pytest.raises(ControlError):
        store.approve(grant.id, "stranger", "stranger")
    with pytest.raises(ControlError):
        store.reject(grant.id, "stranger", "stranger", "no")
    assert store.grant(grant.id).approvals == []
