# Unit tests for the decision's shape, scope dispatch and fail-closed defaults.
package veil.authz

import rego.v1

test_allow_has_every_field if {
	d := decision with input as fixture_input
	d == {
		"allow": true,
		"reasons": [],
		"grant_id": "g_abc",
		"obligations": {
			"min_distinct_units": 10,
			"max_rows": 10000,
			"noise": dp_noise,
			"price_plan": "free",
			"review": "auto",
		},
	}
}

test_other_scope_not_covered if {
	d := decision with input as patched(fixture_input, {"scope": "nothing:here"})
	d.allow == false
	d.reasons == ["scope_not_covered"]
	d.grant_id == null
	d.obligations.min_distinct_units == 10
}

test_missing_scope_not_covered if {
	d := decision with input as object.remove(fixture_input, {"scope"})
	d.allow == false
	"scope_not_covered" in d.reasons
}

test_empty_input_denied_with_obligations if {
	d := decision with input as {}
	d.allow == false
	d.reasons == ["scope_not_covered"]
	d.grant_id == null
	d.obligations == {
		"min_distinct_units": 20,
		"max_rows": 1000,
		"noise": dp_noise,
		"price_plan": "sensitive",
		"review": "auto",
	}
}

test_operator_deny_overrides_allow if {
	d := decision with input as fixture_input with deny as {"operator_freeze"}
	d.allow == false
	d.reasons == ["operator_freeze"]
	d.grant_id == null
}

test_deny_without_reason_still_names_one if {
	d := decision with input as fixture_input with scope_allows as false
	d.allow == false
	d.reasons == ["not_allowed"]
}

test_reasons_sorted if {
	d := decision with input as with_principal({"roles": ["provider"], "status": "suspended"})
	d.reasons == ["not_a_developer", "principal_inactive"]
}
