"""What a query's decision reads in one connection (grants, their quota use, asset stops, a due
expiry) says what the separate reads say, on SQLite and PostgreSQL."""

from __future__ import annotations

from governance import ControlStore, GrantStatus, SuspensionKind

BODY = {"developer": "dev", "assets": ["a.one"], "purpose": "research", "methods": ["sql"],
        "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"}  # fmt: skip


def _active(store: ControlStore, **body) -> str:
    grant = store.create_grant(dict(BODY, **body), ["prov"])
    store.approve(grant.id, "prov", "prov")
    return grant.id


def test_standing_reads_the_grants_and_asset_stops(store) -> None:
    first = _active(store)
    pending = store.create_grant(dict(BODY), ["prov", "other"]).id
    store.create_grant(dict(BODY, developer="someone_else"), ["prov"])
    store.suspend(SuspensionKind.ASSET, "a.two", "recalled", "op")
    standing = store.standing("dev")
    assert standing.grants == store.grants_of("dev")
    assert {grant.id for grant in standing.grants} == {first, pending}
    assert standing.suspended_assets == store.suspended_assets() == {"a.two"}
    assert store.standing("nobody").grants == []


def test_an_expiry_is_due_exactly_when_expire_due_would_expire_a_grant(store) -> None:
    active = _active(store)
    suspended = _active(store, valid_until="2027-02-01T00:00:00Z")
    store.suspend(SuspensionKind.GRANT, suspended, "looking", "op")
    store.create_grant(dict(BODY, valid_until="2026-06-01T00:00:00Z"), ["prov"])  # pending
    standing = store.standing("dev")
    assert not standing.expiry_due("2026-12-31T23:59:59Z")
    assert standing.expiry_due("2027-01-01T00:00:00Z")  # the active one's term has ended
    assert [g.id for g in store.expire_due("2027-01-01T00:00:00Z")] == [active]
    assert not store.standing("dev").expiry_due("2027-01-31T00:00:00Z")
    # A suspended grant's term ends too, as expire_due's statement selects it.
    assert store.standing("dev").expiry_due("2027-02-01T00:00:00Z")
    store.set_status(suspended, GrantStatus.REVOKED, "op", "ended")
    ended = store.standing("dev")
    assert {g.status for g in ended.grants} == {
        GrantStatus.EXPIRED, GrantStatus.REVOKED, GrantStatus.PENDING
    }  # fmt: skip
    assert not ended.expiry_due("2099-01-01T00:00:00Z")
    assert store.expire_due("2099-01-01T00:00:00Z") == []


def test_quota_use_read_with_the_grants_is_the_stored_use(store) -> None:
    quotas = {"queries_per_day": 2, "rows_scanned": 100}
    limited = store.grant(_active(store, quotas=quotas))
    free = store.grant(_active(store))
    day, next_day = "2026-06-01", "2026-06-02"
    for rows, expected in ((0, None), (101, "rows_scanned")):
        assert store.standing("dev").exceeded_quota(limited, rows, day) == expected
    assert store.reserve(limited, 60, day) is None
    assert store.reserve(limited, 30, day) is None
    standing = store.standing("dev")
    for rows, on in ((0, day), (0, next_day), (10, next_day), (11, next_day)):
        assert standing.exceeded_quota(limited, rows, on) == store.exceeded_quota(limited, rows, on)
    assert standing.exceeded_quota(limited, 0, day) == "queries_per_day"
    assert standing.exceeded_quota(limited, 10, next_day) is None
    assert standing.exceeded_quota(limited, 11, next_day) == "rows_scanned"
    assert standing.exceeded_quota(free, 10**9, day) is None


def test_a_suspended_grant_past_its_term_expires(store) -> None:
    """expire_due selects suspended grants too; each must be allowed to end (it raised, and
    with it every query that expired grants on its way)."""
    suspended = _active(store, valid_until="2027-02-01T00:00:00Z")
    store.suspend(SuspensionKind.GRANT, suspended, "looking", "op")
    assert [g.id for g in store.expire_due("2027-02-01T00:00:00Z")] == [suspended]
    assert store.grant(suspended).status is GrantStatus.EXPIRED
    assert not store.standing("dev").expiry_due("2099-01-01T00:00:00Z")
