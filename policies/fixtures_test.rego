# Shared inputs for the policy unit tests: the gateway's query:run input for one grant.
#
# Run the tests with `opa test policies/`: rego-cpp 1.5.2 aborts compiling `with input as …`,
# so the embedded engine never loads *_test.rego.
package veil.authz

import rego.v1

fixture_now := "2026-11-22T10:00:00Z"

fixture_principal := {"id": "analyst", "roles": ["developer"], "org": "acme", "status": "active"}

fixture_asset := {
	"id": "hospital.visits",
	"classification": "L3",
	"provider": "city-hospital",
	"domain": "health",
	"status": "active",
}

fixture_columns := {"hospital.visits": ["age", "cost", "patient_id"]}

fixture_resource := {"assets": [fixture_asset], "columns": fixture_columns}

fixture_request := {"method": "sql", "purpose": "public_welfare", "grant_id": null}

fixture_grant := {
	"id": "g_abc",
	"developer": "analyst",
	"assets": ["hospital.visits"],
	"columns": fixture_columns,
	"purpose": "public_welfare",
	"scenario": "clinic load by age band",
	"methods": ["sql"],
	"valid_from": "2026-01-01T00:00:00Z",
	"valid_until": "2027-01-01T00:00:00Z",
	"status": "active",
}

fixture_input := query_input(fixture_principal, fixture_resource, fixture_request, [fixture_grant])

query_input(principal, resource, request, grants) := {
	"scope": "query:run",
	"principal": principal,
	"resource": resource,
	"request": request,
	"grants": grants,
	"now": fixture_now,
}

# object.union merges nested objects in OPA but replaces them in rego-cpp, so a nested object is
# removed first and each builder's result is the same in both engines.
patched(obj, patch) := object.union(object.remove(obj, object.keys(patch)), patch)

with_grants(grants) := patched(fixture_input, {"grants": grants})

with_grant(patch) := with_grants([patched(fixture_grant, patch)])

with_request(patch) := patched(fixture_input, {"request": patched(fixture_request, patch)})

with_principal(patch) := patched(fixture_input, {"principal": patched(fixture_principal, patch)})

with_assets(assets, columns) := patched(fixture_input, {"resource": {"assets": assets, "columns": columns}})

asset_with(patch) := patched(fixture_asset, patch)
