# Unit tests for the obligations attached to a decision.
package veil.authz

import rego.v1

units_for(levels) := {level: n |
	some level in levels
	doc := with_assets([asset_with({"classification": level})], fixture_columns)
	n := min_distinct_units with input as doc
}

test_min_distinct_units_by_classification if {
	units_for({"L1", "L2", "L3", "L4"}) == {"L1": 5, "L2": 10, "L3": 10, "L4": 20}
}

test_strictest_classification_wins if {
	claims := {"id": "insurer.claims", "classification": "L4", "status": "active"}
	lab := {"id": "lab.results", "classification": "L1", "status": "active"}
	doc := with_assets([lab, claims, fixture_asset], {})
	grant := patched(fixture_grant, {"assets": ["hospital.visits", "insurer.claims", "lab.results"]})
	d := decision with input as patched(doc, {"grants": [grant]})
	d.allow
	d.obligations.min_distinct_units == 20
}

test_operator_floor_raises if {
	d := decision with input as fixture_input with min_distinct_units_floor as {10, 50}
	d.obligations.min_distinct_units == 50
}

test_public_purposes_free if {
	d := decision with input as fixture_input
	d.obligations.price_plan == "free"
	g := patched(fixture_grant, {"purpose": "public_governance"})
	e := decision with input as patched(with_grants([g]), {"request": patched(fixture_request, {"purpose": "public_governance"})})
	e.obligations.price_plan == "free"
}

test_other_purposes_standard if {
	g := patched(fixture_grant, {"purpose": "credit_scoring"})
	d := decision with input as patched(with_grants([g]), {"request": patched(fixture_request, {"purpose": null})})
	d.allow
	d.obligations.price_plan == "standard"
}

test_fixed_obligations if {
	d := decision with input as fixture_input
	d.obligations.max_rows == 10000
	d.obligations.noise == null
	d.obligations.review == "auto"
}

test_obligations_on_deny if {
	d := decision with input as with_grants([])
	not d.allow
	d.obligations == {
		"min_distinct_units": 10,
		"max_rows": 10000,
		"noise": null,
		"price_plan": "standard",
		"review": "auto",
	}
}

test_non_numeric_floor_fails_closed if {
	d := decision with input as fixture_input with min_distinct_units_floor as {10, "many"}
	d.allow == false
	d.reasons == ["policy_incomplete"]
}

test_l4_caps_rows if {
	d := decision with input as with_assets([asset_with({"classification": "L4"})], fixture_columns)
	d.obligations.max_rows == 1000
	e := decision with input as fixture_input
	e.obligations.max_rows == 10000
	f := decision with input as with_assets([asset_with({"classification": "L9"})], fixture_columns)
	f.obligations.max_rows == 1000
}
