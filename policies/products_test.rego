# Unit tests for data product descriptions: developers file them, readers are narrowed by the
# service, and only the developer who filed a product withdraws it.
package veil.authz

import rego.v1

filed_product := {
	"id": "p_0123456789abcdef0123456789abcdef",
	"developer": "analyst",
	"org": "acme",
	"assets": ["hospital.visits"],
}

product_input(scope, principal, resource) := {
	"scope": scope,
	"principal": principal,
	"resource": resource,
	"request": {},
	"grants": [],
	"now": fixture_now,
}

test_a_developer_files_and_the_readers_read if {
	decision.allow with input as product_input("product:file", fixture_principal, {})
	every roles in [["developer"], ["provider"], ["supervisor"], ["operator"]] {
		reader := patched(fixture_principal, {"roles": roles})
		decision.allow with input as product_input("product:read", reader, {"product": filed_product})
	}
	admin := patched(fixture_principal, {"roles": ["admin"]})
	d := decision with input as product_input("product:read", admin, {})
	d.reasons == ["role_not_permitted"]
	provider := patched(fixture_principal, {"id": "city-hospital", "roles": ["provider"]})
	e := decision with input as product_input("product:file", provider, {})
	e.reasons == ["role_not_permitted"]
}

test_only_its_developer_withdraws_a_product if {
	decision.allow with input as product_input("product:withdraw", fixture_principal, {"product": filed_product})
	colleague := patched(fixture_principal, {"id": "colleague"})
	d := decision with input as product_input("product:withdraw", colleague, {"product": filed_product})
	d.reasons == ["not_product_developer"]
	supervisor := patched(fixture_principal, {"id": "supervisor", "roles": ["supervisor"]})
	e := decision with input as product_input("product:withdraw", supervisor, {"product": filed_product})
	"role_not_permitted" in e.reasons
	"not_product_developer" in e.reasons
}

test_a_withdrawal_names_its_product if {
	d := decision with input as product_input("product:withdraw", fixture_principal, {})
	d.reasons == ["invalid_input"]
	e := decision with input as product_input("product:withdraw", fixture_principal, {"product": {"developer": 7}})
	e.reasons == ["invalid_input"]
}
