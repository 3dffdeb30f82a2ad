# Scopes "query:run" and "job:submit": a developer computes on assets under one of their grants.
package veil.authz

import rego.v1

# Each data scope and the grant method it uses.
data_scope_methods := {"query:run": "sql", "job:submit": "job"}

scopes contains scope if some scope in object.keys(data_scope_methods)

data_scope if input.scope in object.keys(data_scope_methods)

scope_allows if {
	data_scope
	request_well_formed
	is_developer
	principal_active
	count(requested_assets) > 0
	count(inactive_assets) == 0
	count(unclassified_assets) == 0
	count(covering_grants) > 0
}

deny contains code if {
	data_scope
	some code in query_denials
}

query_denials contains "invalid_input" if not request_well_formed

query_denials contains "not_a_developer" if not is_developer

query_denials contains "principal_inactive" if not principal_active

query_denials contains "no_assets" if count(requested_assets) == 0

query_denials contains "asset_inactive" if count(inactive_assets) > 0

query_denials contains "asset_unclassified" if count(unclassified_assets) > 0

# Grant reasons computed from a malformed request would only mislead.
query_denials contains code if {
	request_well_formed
	some code in grant_reasons
}

# Government-guided price caps (政府指导价 / 最高限价). The gateway sends an asset's card
# `pricing` and its `price_cap` (the asset's own cap, else its classification's) only when a cap
# applies. A request is refused when the plan its decision charges under has a rate above the
# cap: a base rate, a row tier or a named plan's, as ledger/pricing.py charges them. So a cap
# set after a card was registered counts from the next request. Nothing is charged under the
# plan "free" or for a purpose the card serves free, and without a covering grant there is no
# plan to charge under, so none of those is refused for its price.
query_denials contains "price_above_cap" if {
	some i in charged_capped_assets
	a := input.resource.assets[i]
	price_cap_well_formed(a)
	a.price_cap.currency == a.pricing.currency
	some rate, limit in a.price_cap.max
	some charged in charged_rates(a, rate)
	charged > limit
}

# A cap in another currency than the card's cannot be compared: refused, never assumed met.
query_denials contains "price_cap_currency_mismatch" if {
	some i in charged_capped_assets
	a := input.resource.assets[i]
	price_cap_well_formed(a)
	a.price_cap.currency != a.pricing.currency
}

query_denials contains "price_cap_invalid" if {
	some i in charged_capped_assets
	not price_cap_well_formed(input.resource.assets[i])
}

charged_capped_assets contains i if {
	count(covering_grants) > 0
	price_plan != "free"
	some i
	a := input.resource.assets[i]
	a.price_cap
	not covering_grant.purpose in object.get(object.get(a, "pricing", {}), "free_purposes", [])
}

price_cap_well_formed(a) if {
	is_string(a.price_cap.currency)
	is_object(a.price_cap.max)
	every limit in a.price_cap.max {
		is_number(limit)
	}
	is_string(a.pricing.currency)
	is_object(plan_rates(a))
}

# The rates of the plan the decision charges under; a plan the card does not name charges its
# base rates.
plan_rates(a) := rates if {
	rates := a.pricing.plans[price_plan]
} else := a.pricing

# Every rate of the plan charged for one field: the rate itself and, for rows, each row tier's.
charged_rates(a, rate) := {object.get(plan_rates(a), rate, 0)} | {tier.per_1k_rows_scanned_minor |
	rate == "per_1k_rows_scanned_minor"
	some tier in object.get(plan_rates(a), "row_tiers", [])
}
