# Tests of the operator example in README.md ("Adding a rule"), run by tests/cli/test_cli.py.
package veil.authz

import rego.v1

l4_input(now) := patched(with_assets([asset_with({"classification": "L4"})], fixture_columns), {"now": now})

test_l4_denied_at_night if {
	d := decision with input as l4_input("2026-11-22T15:00:00Z")
	"outside_office_hours" in d.reasons
}

test_l4_allowed_in_office_hours if {
	d := decision with input as l4_input("2026-11-22T02:00:00Z")
	d.allow
}

test_l4_commercial_floor if {
	doc := patched(l4_input("2026-11-22T02:00:00Z"), {"grants": [patched(fixture_grant, {"purpose": "commerce"})], "request": patched(fixture_request, {"purpose": null})})
	d := decision with input as doc
	d.obligations.min_distinct_units == 50
}
