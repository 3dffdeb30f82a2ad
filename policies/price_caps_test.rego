# Unit tests for government-guided price caps: a data request is refused when the plan its
# decision charges under has a rate above the cap that applies to an asset; and the cap scopes.
package veil.authz

import rego.v1

cap_pricing := {
	"currency": "CNY",
	"per_query_minor": 100,
	"per_1k_rows_scanned_minor": 2,
	"per_cpu_second_minor": 10,
	"row_tiers": [{"above_rows": 1000, "per_1k_rows_scanned_minor": 1}],
	"plans": {"sensitive": {
		"per_query_minor": 300,
		"per_1k_rows_scanned_minor": 2,
		"per_cpu_second_minor": 10,
		"row_tiers": [],
	}},
	"free_purposes": ["public_welfare", "public_governance"],
}

cny_cap(maximum) := {"currency": "CNY", "max": maximum}

# A commercial grant's query on one asset of `level`, priced by `pricing`, under `cap`.
capped(level, pricing, cap) := patched(with_grant({"purpose": "commercial_pricing"}), {
	"request": patched(fixture_request, {"purpose": "commercial_pricing"}),
	"resource": {
		"assets": [asset_with({"classification": level, "pricing": pricing, "price_cap": cap})],
		"columns": fixture_columns,
	},
})

test_a_charge_within_its_cap_is_allowed if {
	cap := cny_cap({"per_query_minor": 100, "per_1k_rows_scanned_minor": 2, "per_cpu_second_minor": 10})
	d := decision with input as capped("L3", cap_pricing, cap)
	d.allow
	d.obligations.price_plan == "standard"
}

test_a_base_rate_above_its_cap_is_refused if {
	d := decision with input as capped("L3", cap_pricing, cny_cap({"per_query_minor": 99}))
	not d.allow
	d.reasons == ["price_above_cap"]
	d.grant_id == null
}

test_a_rate_the_cap_leaves_out_is_not_capped if {
	d := decision with input as capped("L3", cap_pricing, cny_cap({"per_cpu_second_minor": 10}))
	d.allow
}

test_a_row_tier_above_its_cap_is_refused if {
	pricing := patched(cap_pricing, {
		"per_1k_rows_scanned_minor": 1,
		"row_tiers": [{"above_rows": 1000, "per_1k_rows_scanned_minor": 5}],
	})
	d := decision with input as capped("L3", pricing, cny_cap({"per_1k_rows_scanned_minor": 4}))
	d.reasons == ["price_above_cap"]
	e := decision with input as capped("L3", pricing, cny_cap({"per_1k_rows_scanned_minor": 5}))
	e.allow
}

# L4 charges the plan "sensitive": its rate is the one capped, whatever the base rate says.
test_the_named_plan_charged_is_the_one_capped if {
	cap := cny_cap({"per_query_minor": 200})
	sensitive := decision with input as capped("L4", cap_pricing, cap)
	sensitive.obligations.price_plan == "sensitive"
	sensitive.reasons == ["price_above_cap"]
	standard := decision with input as capped("L3", cap_pricing, cap)
	standard.allow
}

test_a_plan_the_card_does_not_name_charges_its_base_rates if {
	pricing := patched(cap_pricing, {"plans": {}})
	d := decision with input as capped("L4", pricing, cny_cap({"per_query_minor": 99}))
	d.reasons == ["price_above_cap"]
	e := decision with input as capped("L4", pricing, cny_cap({"per_query_minor": 100}))
	e.allow
}

test_nothing_charged_is_nothing_capped if {
	cap := cny_cap({"per_query_minor": 0})

	# The plan "free": a public-welfare grant.
	free := patched(capped("L3", cap_pricing, cap), {"grants": [fixture_grant], "request": fixture_request})
	welfare := decision with input as free
	welfare.allow
	welfare.obligations.price_plan == "free"

	# A purpose the card itself serves free.
	card_free := patched(cap_pricing, {"free_purposes": ["commercial_pricing"]})
	served := decision with input as capped("L3", card_free, cap)
	served.allow
}

test_a_cap_in_another_currency_is_refused if {
	d := decision with input as capped("L3", cap_pricing, {"currency": "USD", "max": {"per_query_minor": 1000}})
	d.reasons == ["price_cap_currency_mismatch"]
}

test_a_malformed_cap_is_refused if {
	d := decision with input as capped("L3", cap_pricing, {"currency": "CNY", "max": 100})
	d.reasons == ["price_cap_invalid"]
	e := decision with input as capped("L3", cap_pricing, cny_cap({"per_query_minor": "100"}))
	e.reasons == ["price_cap_invalid"]
}

# Without a covering grant there is no plan to charge: the grant's reasons alone are given.
test_no_price_reason_without_a_covering_grant if {
	doc := patched(capped("L3", cap_pricing, cny_cap({"per_query_minor": 1})), {"grants": []})
	d := decision with input as doc
	d.reasons == ["no_covering_grant"]
}

test_assets_without_a_cap_are_not_capped if {
	doc := capped("L3", cap_pricing, cny_cap({"per_query_minor": 1}))
	uncapped := object.remove(doc.resource.assets[0], {"price_cap"})
	d := decision with input as patched(doc, {"resource": {"assets": [uncapped], "columns": fixture_columns}})
	d.allow
}

test_a_job_above_its_cap_is_refused if {
	doc := patched(capped("L3", cap_pricing, cny_cap({"per_cpu_second_minor": 9})), {
		"scope": "job:submit",
		"request": {"method": "job", "purpose": null, "grant_id": null},
		"grants": [patched(fixture_grant, {"purpose": "commercial_pricing", "methods": ["job"]})],
	})
	d := decision with input as doc
	d.reasons == ["price_above_cap"]
}

test_anyone_reads_caps_and_supervisors_alone_change_them if {
	every role in everyone {
		decision.allow with input as role_input("price_cap:read", as_roles([role]), {})
	}
	changers := {role |
		some role in everyone
		some scope in ["price_cap:set", "price_cap:remove"]
		decision.allow with input as role_input(scope, as_roles([role]), {"price_cap": {"kind": "classification", "target": "L3"}})
	}
	changers == {"supervisor"}
}
