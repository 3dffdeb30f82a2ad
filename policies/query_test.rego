# Unit tests for scope query:run: principal and asset checks around grant coverage.
package veil.authz

import rego.v1

test_query_allowed if {
	d := decision with input as fixture_input
	d.allow
	d.reasons == []
	d.grant_id == "g_abc"
}

test_not_a_developer if {
	d := decision with input as with_principal({"roles": ["provider"]})
	d.reasons == ["not_a_developer"]
	d.grant_id == null
}

test_principal_inactive if {
	d := decision with input as with_principal({"status": "suspended"})
	d.reasons == ["principal_inactive"]
}

test_asset_inactive if {
	d := decision with input as with_assets([asset_with({"status": "destroyed"})], fixture_columns)
	d.reasons == ["asset_inactive"]
}

test_asset_unclassified if {
	d := decision with input as with_assets([asset_with({"classification": "secret"})], fixture_columns)
	d.reasons == ["asset_unclassified"]
	d.obligations.min_distinct_units == 20
}

test_no_assets if {
	d := decision with input as with_assets([], {})
	d.reasons == ["no_assets"]
}

test_invalid_input if {
	d := decision with input as patched(fixture_input, {"now": "soon"})
	d.reasons == ["invalid_input"]
}

test_missing_request_denied if {
	d := decision with input as object.remove(fixture_input, {"request"})
	not d.allow
	"invalid_input" in d.reasons
}

test_every_failure_reported if {
	doc := patched(with_principal({"roles": [], "status": "suspended"}), {"grants": []})
	d := decision with input as doc
	d.reasons == ["no_covering_grant", "not_a_developer", "principal_inactive"]
}

test_job_submit_needs_a_job_grant if {
	job := patched(fixture_input, {"scope": "job:submit", "request": patched(fixture_request, {"method": "job"})})
	d := decision with input as job
	d.reasons == ["method_not_granted"]
	e := decision with input as patched(job, {"grants": [patched(fixture_grant, {"methods": ["sql", "job"]})]})
	e.allow
	e.grant_id == "g_abc"
}

test_method_must_match_scope if {
	d := decision with input as with_request({"method": "job"})
	d.reasons == ["invalid_input"]
}
