# Unit tests for grant coverage, grant choice and the reasons given for uncovered requests.
package veil.authz

import rego.v1

later_grant := patched(fixture_grant, {"id": "g_b", "purpose": "commerce"})

other_asset_grant := patched(fixture_grant, {
	"id": "g_other",
	"assets": ["insurer.claims"],
	"columns": null,
})

test_smallest_covering_id_chosen if {
	d := decision with input as with_grants([later_grant, fixture_grant])
	d.grant_id == "g_abc"
}

test_pinned_grant_chosen if {
	doc := patched(with_grants([later_grant, fixture_grant]), {"request": patched(fixture_request, {
		"grant_id": "g_b",
		"purpose": null,
	})})
	d := decision with input as doc
	d.allow
	d.grant_id == "g_b"
	d.obligations.price_plan == "standard"
}

test_pinned_grant_missing if {
	d := decision with input as with_request({"grant_id": "g_zzz"})
	d.reasons == ["grant_not_found"]
}

test_pinned_grant_of_other_developer_not_found if {
	theirs := patched(fixture_grant, {"id": "g_theirs", "developer": "fintech"})
	doc := patched(with_grants([fixture_grant, theirs]), {"request": patched(fixture_request, {"grant_id": "g_theirs"})})
	d := decision with input as doc
	d.reasons == ["grant_not_found"]
}

test_pinned_grant_explains_itself if {
	expired := patched(later_grant, {"valid_until": "2026-06-01T00:00:00Z"})
	doc := patched(with_grants([fixture_grant, expired]), {"request": patched(fixture_request, {
		"grant_id": "g_b",
		"purpose": null,
	})})
	d := decision with input as doc
	d.reasons == ["grant_expired"]
}

test_no_grants if {
	d := decision with input as with_grants([])
	d.reasons == ["no_covering_grant"]
}

test_other_developers_grant_ignored if {
	d := decision with input as with_grant({"developer": "fintech"})
	d.reasons == ["no_covering_grant"]
}

test_grant_inactive if {
	d := decision with input as with_grant({"status": "suspended"})
	d.reasons == ["grant_inactive"]
}

test_grant_expired if {
	d := decision with input as with_grant({"valid_until": "2026-11-22T10:00:00Z"})
	d.reasons == ["grant_expired"]
}

test_grant_not_yet_valid if {
	d := decision with input as with_grant({"valid_from": "2026-11-22T10:00:01Z"})
	d.reasons == ["grant_not_yet_valid"]
}

test_validity_compares_instants if {
	d := decision with input as with_grant({"valid_from": "2026-11-22T11:00:00+01:00"})
	d.allow
	e := decision with input as with_grant({"valid_until": "2026-11-22T11:00:00+01:00"})
	e.reasons == ["grant_expired"]
}

test_method_not_granted if {
	d := decision with input as with_grant({"methods": ["job"]})
	d.reasons == ["method_not_granted"]
}

test_purpose_mismatch if {
	d := decision with input as with_request({"purpose": "marketing"})
	d.reasons == ["purpose_mismatch"]
}

test_null_purpose_takes_grant_purpose if {
	d := decision with input as with_request({"purpose": null})
	d.allow
	d.obligations.price_plan == "free"
}

test_asset_not_granted if {
	d := decision with input as with_grant({"assets": ["insurer.claims"], "columns": null})
	d.reasons == ["asset_not_granted"]
}

test_column_not_granted if {
	d := decision with input as with_grant({"columns": {"hospital.visits": ["age", "cost"]}})
	d.reasons == ["column_not_granted"]
}

test_columns_subset_allowed if {
	doc := with_assets([fixture_asset], {"hospital.visits": ["age"]})
	d := decision with input as patched(doc, {"grants": [patched(fixture_grant, {"columns": {"hospital.visits": ["age", "cost"]}})]})
	d.allow
}

test_narrowing_without_asset_grants_no_column if {
	d := decision with input as with_grant({"columns": {"insurer.claims": ["amount"]}})
	d.reasons == ["column_not_granted"]
}

test_null_columns_grant_every_column if {
	d := decision with input as with_grant({"columns": null})
	d.allow
}

test_malformed_grant_never_covers if {
	d := decision with input as with_grants([object.remove(fixture_grant, {"status"})])
	d.reasons == ["grant_malformed"]
	e := decision with input as with_grant({"valid_until": "next year"})
	e.reasons == ["grant_malformed"]
}

test_grant_for_requested_assets_explains if {
	expired := patched(fixture_grant, {"valid_until": "2026-06-01T00:00:00Z"})
	d := decision with input as with_grants([other_asset_grant, expired])
	d.reasons == ["grant_expired"]
}

test_nearest_grants_explain if {
	expired := patched(fixture_grant, {"id": "g_1", "valid_until": "2026-06-01T00:00:00Z"})
	revoked := patched(fixture_grant, {"id": "g_2", "status": "revoked"})
	worse := patched(fixture_grant, {"id": "g_3", "status": "revoked", "methods": ["job"]})
	d := decision with input as with_grants([expired, revoked, worse])
	d.reasons == ["grant_expired", "grant_inactive"]
}

test_every_problem_of_one_grant if {
	g := patched(fixture_grant, {"status": "revoked", "methods": ["job"], "purpose": "marketing"})
	d := decision with input as with_grants([g])
	d.reasons == ["grant_inactive", "method_not_granted", "purpose_mismatch"]
}

# covering_grants inlines the grant checks for speed; every variant must agree with them.
check_variants := [
	{},
	{"status": "revoked"},
	{"methods": ["job"]},
	{"assets": ["insurer.claims"]},
	{"purpose": "marketing"},
	{"valid_from": "2026-12-01T00:00:00Z"},
	{"valid_until": "2026-06-01T00:00:00Z"},
	{"columns": {"hospital.visits": ["age"]}},
	{"columns": null},
	{"columns": ["age"]},
	{"status": null},
	{"methods": "sql"},
	{"valid_until": "later"},
	{"id": 7},
]

test_coverage_agrees_with_checks if {
	every patch in check_variants {
		doc := with_grants([patched(fixture_grant, patch)])
		covered := count(covering_grants) with input as doc
		problems := count(problems_of(doc.grants[0])) with input as doc
		covered + problems == 1
	}
}

test_grants_for_other_data_only_say_asset_not_granted if {
	revoked_other := patched(other_asset_grant, {"id": "g_other2", "status": "revoked"})
	d := decision with input as with_grants([other_asset_grant, revoked_other])
	d.reasons == ["asset_not_granted"]
	e := decision with input as with_grant({"assets": "hospital.visits"})
	e.reasons == ["asset_not_granted"]
}
