# Unit tests for the role scopes: roles per scope and the relation rules on assets and grants.
package veil.authz

import rego.v1

role_input(scope, principal, resource) := {
	"scope": scope,
	"principal": principal,
	"resource": resource,
	"request": {},
	"grants": [],
	"now": fixture_now,
}

as_roles(roles) := patched(fixture_principal, {"id": "someone", "roles": roles})

provider := patched(fixture_principal, {"id": "city-hospital", "roles": ["provider"]})

pending_grant := {
	"id": "g_abc",
	"developer": "analyst",
	"assets": ["hospital.visits"],
	"parties": ["city-hospital", "role:supervisor"],
	"status": "pending",
}

test_every_scope_admits_exactly_its_roles if {
	mismatched := [[scope, role] |
		some scope, roles in scope_roles
		some role in everyone
		d := decision with input as role_input(scope, as_roles([role]), {})

		# Named first: opa fmt drops the parentheses around `in` expressions, changing the meaning.
		refused := "role_not_permitted" in d.reasons
		permitted := role in roles
		refused == permitted
	]
	mismatched == []
	count(scope_roles) * count(everyone) == count([1 |
		some scope in object.keys(scope_roles)
		some role in everyone
		decision with input as role_input(scope, as_roles([role]), {})
	])
}

test_role_denial_names_reason if {
	d := decision with input as role_input("principal:manage", fixture_principal, {})
	d.reasons == ["role_not_permitted"]
	d.grant_id == null
}

test_inactive_principal_denied_every_scope if {
	every scope, _ in scope_roles {
		d := decision with input as role_input(scope, patched(as_roles(["admin", "operator", "supervisor"]), {"status": "suspended"}), {})
		"principal_inactive" in d.reasons
	}
}

test_malformed_principal_denied if {
	d := decision with input as role_input("catalog:read", {"id": 7, "roles": "admin"}, {})
	not d.allow
	"invalid_input" in d.reasons
	e := decision with input as object.remove(role_input("catalog:read", fixture_principal, {}), {"principal"})
	not e.allow
}

test_any_active_principal_reads_the_catalog if {
	d := decision with input as role_input("catalog:read", fixture_principal, {"assets": [fixture_asset]})
	d.allow
	d.reasons == []
}

test_provider_registers_own_asset_only if {
	own := decision with input as role_input("asset:register", provider, {"assets": [fixture_asset]})
	own.allow
	theirs := decision with input as role_input("asset:register", provider, {"assets": [asset_with({"provider": "insurer"})]})
	theirs.reasons == ["not_asset_provider"]
	operator := decision with input as role_input("asset:register", as_roles(["operator"]), {"assets": [asset_with({"provider": "insurer"})]})
	operator.allow
}

test_register_needs_exactly_one_asset if {
	d := decision with input as role_input("asset:register", provider, {"assets": []})
	d.reasons == ["invalid_input"]
	e := decision with input as role_input("asset:register", provider, {})
	e.reasons == ["invalid_input"]
}

test_grant_party_approves if {
	d := decision with input as role_input("grant:approve", provider, {"grant": pending_grant})
	d.allow
	insurer := patched(provider, {"id": "insurer"})
	e := decision with input as role_input("grant:approve", insurer, {"grant": pending_grant})
	e.reasons == ["not_grant_party"]
}

test_supervisor_approves_as_supervisor_party if {
	d := decision with input as role_input("grant:approve", as_roles(["supervisor"]), {"grant": pending_grant})
	d.allow
	no_supervisor := patched(pending_grant, {"parties": ["city-hospital"]})
	e := decision with input as role_input("grant:approve", as_roles(["supervisor"]), {"grant": no_supervisor})
	e.reasons == ["not_grant_party"]
}

test_approve_without_grant_is_invalid if {
	d := decision with input as role_input("grant:approve", provider, {})
	not d.allow
	"invalid_input" in d.reasons
	e := decision with input as role_input("grant:revoke", provider, {"grant": {"developer": "analyst"}})
	not e.allow
	"invalid_input" in e.reasons
}

test_supervisor_id_is_not_the_supervisor_party if {
	impostor := patched(provider, {"id": "supervisor"})
	d := decision with input as role_input("grant:approve", impostor, {"grant": pending_grant})
	d.reasons == ["not_grant_party"]
}

test_party_must_hold_the_provider_role if {
	d := decision with input as role_input("grant:approve", patched(provider, {"roles": ["supervisor"]}), {"grant": patched(pending_grant, {"parties": ["city-hospital"]})})
	d.reasons == ["not_grant_party"]
}

test_operator_revokes_any_grant if {
	d := decision with input as role_input("grant:revoke", as_roles(["operator"]), {"grant": pending_grant})
	d.allow
	e := decision with input as role_input("grant:revoke", patched(provider, {"id": "insurer"}), {"grant": pending_grant})
	e.reasons == ["not_grant_party"]
	f := decision with input as role_input("grant:revoke", provider, {"grant": pending_grant})
	f.allow
}

test_grant_readers if {
	decision.allow with input as role_input("grant:read", fixture_principal, {"grant": pending_grant})
	decision.allow with input as role_input("grant:read", provider, {"grant": pending_grant})
	decision.allow with input as role_input("grant:read", as_roles(["operator"]), {"grant": pending_grant})
	decision.allow with input as role_input("grant:read", as_roles(["admin"]), {"grant": pending_grant})
	other := patched(fixture_principal, {"id": "fintech"})
	d := decision with input as role_input("grant:read", other, {"grant": pending_grant})
	d.reasons == ["not_grant_party"]
	listing := decision with input as role_input("grant:read", other, {})
	listing.allow
}

test_role_scopes_and_data_scopes_are_covered if {
	scopes == {scope | some scope in object.keys(scope_roles)} | {"query:run", "job:submit"}
}

test_no_grant_request_on_an_inactive_asset if {
	developer := as_roles(["developer"])
	open := decision with input as role_input("grant:request", developer, {"assets": [fixture_asset]})
	open.allow
	stopped := asset_with({"status": "suspended"})
	d := decision with input as role_input("grant:request", developer, {"assets": [stopped]})
	d.reasons == ["asset_inactive"]
}

twin_input(principal, assets, grants) := patched(role_input("twin:read", principal, {"assets": assets}), {"grants": grants})

twin_grant := patched(fixture_grant, {"methods": ["job"]})

test_a_granted_developer_reads_the_twin if {
	decision.allow with input as twin_input(fixture_principal, [fixture_asset], [twin_grant])
}

test_a_developer_without_a_grant_in_force_reads_no_twin if {
	none := decision with input as twin_input(fixture_principal, [fixture_asset], [])
	none.reasons == ["asset_not_granted"]
	revoked := decision with input as twin_input(fixture_principal, [fixture_asset], [patched(twin_grant, {"status": "revoked"})])
	revoked.reasons == ["asset_not_granted"]
	expired := decision with input as twin_input(fixture_principal, [fixture_asset], [patched(twin_grant, {"valid_until": "2026-01-02T00:00:00Z"})])
	expired.reasons == ["asset_not_granted"]
	other := decision with input as twin_input(fixture_principal, [asset_with({"id": "insurance.claims"})], [twin_grant])
	other.reasons == ["asset_not_granted"]
	theirs := decision with input as twin_input(patched(fixture_principal, {"id": "fintech"}), [fixture_asset], [twin_grant])
	theirs.reasons == ["asset_not_granted"]
	stopped := decision with input as twin_input(fixture_principal, [asset_with({"status": "suspended"})], [twin_grant])
	stopped.reasons == ["asset_not_granted"]
}

test_the_provider_and_overseers_read_the_twin if {
	decision.allow with input as twin_input(provider, [fixture_asset], [])
	decision.allow with input as twin_input(as_roles(["supervisor"]), [fixture_asset], [])
	decision.allow with input as twin_input(as_roles(["operator"]), [fixture_asset], [])
	d := decision with input as twin_input(patched(provider, {"id": "insurer"}), [fixture_asset], [])
	d.reasons == ["not_asset_provider"]
	e := decision with input as twin_input(as_roles(["admin"]), [fixture_asset], [])
	e.reasons == ["role_not_permitted"]
}

test_a_twin_names_one_asset if {
	d := decision with input as twin_input(as_roles(["operator"]), [], [])
	d.reasons == ["invalid_input"]
}
