# Unit tests for principal, resource and time facts.
package veil.authz

import rego.v1

test_time_z_equals_zero_offset if {
	time_ns("2026-11-22T10:00:00Z") == time_ns("2026-11-22T10:00:00+00:00")
	time_ns("2026-11-22T10:00:00z") == time_ns("2026-11-22T12:00:00+02:00")
	time_ns("2026-11-22T10:00:00.5Z") > time_ns("2026-11-22T10:00:00Z")
}

test_time_invalid_undefined if {
	not time_ns("2026-13-22T10:00:00Z")
	not time_ns("yesterday")
}

test_column_assets_are_requested if {
	requested_assets == {"hospital.visits", "insurer.claims"} with input as with_assets(
		[fixture_asset],
		{"insurer.claims": ["amount"]},
	)
}

test_request_well_formed if {
	request_well_formed with input as fixture_input
}

test_request_without_columns_well_formed if {
	request_well_formed with input as patched(fixture_input, {"resource": {"assets": [fixture_asset]}})
}

test_columns_of_undescribed_asset_malformed if {
	not request_well_formed with input as with_assets([fixture_asset], {"insurer.claims": ["amount"]})
}

test_unparseable_now_malformed if {
	not request_well_formed with input as patched(fixture_input, {"now": "soon"})
}

test_grants_not_a_list_malformed if {
	not request_well_formed with input as with_grants({"g_abc": fixture_grant})
}

test_developer_role if {
	is_developer with input as fixture_input
	not is_developer with input as with_principal({"roles": ["provider", "supervisor"]})
	not is_developer with input as object.remove(fixture_input, {"principal"})
}
