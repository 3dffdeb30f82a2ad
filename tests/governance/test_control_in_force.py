"""The one-statement check of what an authorisation relied on, on SQLite and PostgreSQL."""

from __future__ import annotations

from governance import SuspensionKind


def test_in_force_follows_principal_grant_and_asset_stops(store) -> None:
    store.create_principal("dev", {"developer"}, "lab")
    body = {"developer": "dev", "assets": ["a.one", "a.two"], "purpose": "research",
            "methods": ["sql"], "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": "2099-01-01T00:00:00Z"}  # fmt: skip
    grant = store.create_grant(body, ["prov"])
    assets = ["a.one", "a.two"]
    assert not store.in_force("dev", grant.id, assets)  # pending
    store.approve(grant.id, "prov", "prov")
    assert store.in_force("dev", grant.id, assets)
    assert store.in_force("dev", None, assets)
    assert not store.in_force("nobody", None, assets)
    assert not store.in_force("dev", "g_missing", assets)
    store.suspend(SuspensionKind.ASSET, "a.three", "recalled", "op")
    assert store.in_force("dev", grant.id, assets)  # another asset
    store.suspend(SuspensionKind.ASSET, "a.two", "recalled", "op")
    assert not store.in_force("dev", grant.id, assets)
    store.resume(SuspensionKind.ASSET, "a.two", "op", "back")
    store.suspend(SuspensionKind.GRANT, grant.id, "scope", "op")
    assert not store.in_force("dev", grant.id, assets)
    assert store.in_force("dev", None, assets)
    store.resume(SuspensionKind.GRANT, grant.id, "op", "back")
    store.suspend(SuspensionKind.PRINCIPAL, "dev", "abuse", "op")
    assert not store.in_force("dev", grant.id, assets)
