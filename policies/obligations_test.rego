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
	d.obligations.noise == dp_noise
	d.obligations.review == "auto"
}

# Differential privacy is the default: thresholds alone need both the card's statement that
# the asset holds no personal data and an operator's listing of the asset.
test_dp_for_personal_data_even_when_listed if {
	d := decision with input as fixture_input with data.veil.authz.thresholds_only_assets as {fixture_asset.id}
	d.obligations.noise.mode == "dp"
}

test_dp_for_unlisted_non_personal_data if {
	d := decision with input as with_assets([asset_with({"personal_data": false})], fixture_columns)
	d.obligations.noise.mode == "dp"
}

test_thresholds_for_listed_non_personal_data if {
	d := decision with input as with_assets([asset_with({"personal_data": false})], fixture_columns)
		with data.veil.authz.thresholds_only_assets as {fixture_asset.id}
	d.obligations.noise == {"mode": "thresholds"}
}

test_dp_when_personal_data_is_not_stated_or_not_false if {
	unstated := object.remove(fixture_asset, {"personal_data"})
	d := decision with input as with_assets([unstated], fixture_columns)
		with data.veil.authz.thresholds_only_assets as {fixture_asset.id}
	d.obligations.noise.mode == "dp"
	e := decision with input as with_assets([asset_with({"personal_data": "false"})], fixture_columns)
		with data.veil.authz.thresholds_only_assets as {fixture_asset.id}
	e.obligations.noise.mode == "dp"
}

test_dp_when_any_asset_is_personal if {
	open := asset_with({"id": "transport.counts", "personal_data": false})
	personal := asset_with({"id": "hospital.visits", "personal_data": true})
	d := decision with input as with_assets([open, personal], fixture_columns)
		with data.veil.authz.thresholds_only_assets as {"transport.counts", "hospital.visits"}
	d.obligations.noise.mode == "dp"
}

job_on(levels) := patched(with_assets([asset_with({"classification": level}) | some level in levels], fixture_columns), {
	"scope": "job:submit",
	"request": patched(fixture_request, {"method": "job"}),
	"grants": [patched(fixture_grant, {"methods": ["job"]})],
})

test_l4_jobs_wait_for_manual_review if {
	reviews := {level: d.obligations.review |
		some level in ["L1", "L2", "L3", "L4"]
		d := decision with input as job_on([level])
	}
	reviews == {"L1": "auto", "L2": "auto", "L3": "auto", "L4": "manual"}
}

test_unknown_level_jobs_wait_for_manual_review if {
	d := decision with input as job_on(["L9"])
	d.obligations.review == "manual"
}

test_operator_reasons_hold_for_review if {
	d := decision with input as fixture_input with manual_review as {"office_hours"}
	d.obligations.review == "manual"
}

test_queries_are_never_held_for_review if {
	d := decision with input as with_assets([asset_with({"classification": "L4"})], fixture_columns)
	d.allow
	d.obligations.review == "auto"
}

commercial_on(level) := patched(with_assets([asset_with({"classification": level})], fixture_columns), {
	"request": patched(fixture_request, {"purpose": null}),
	"grants": [patched(fixture_grant, {"purpose": "credit_scoring"})],
})

test_price_plan_by_classification if {
	plans := {level: d.obligations.price_plan |
		some level in ["L1", "L2", "L3", "L4"]
		d := decision with input as commercial_on(level)
	}
	plans == {"L1": "standard", "L2": "standard", "L3": "standard", "L4": "sensitive"}
}

test_strictest_asset_sets_the_price_plan if {
	claims := {"id": "insurer.claims", "classification": "L4", "status": "active"}
	doc := with_assets([claims, fixture_asset], {})
	grant := patched(fixture_grant, {"assets": ["hospital.visits", "insurer.claims"], "purpose": "credit_scoring"})
	d := decision with input as patched(doc, {"grants": [grant], "request": patched(fixture_request, {"purpose": null})})
	d.allow
	d.obligations.price_plan == "sensitive"
}

test_public_purposes_free_at_every_level if {
	d := decision with input as with_assets([asset_with({"classification": "L4"})], fixture_columns)
	d.obligations.price_plan == "free"
}

test_obligations_on_deny if {
	d := decision with input as with_grants([])
	not d.allow
	d.obligations == {
		"min_distinct_units": 10,
		"max_rows": 10000,
		"noise": dp_noise,
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

test_operators_change_dp_terms_but_not_the_mode if {
	d := decision with input as fixture_input
		with data.veil.authz.dp_terms as {"epsilon_per_period": 20, "mode": "thresholds", "surprise": 1}
	d.obligations.noise == object.union(dp_defaults, {"epsilon_per_period": 20})
}
