# Obligations the enclave enforces on a request; operators tune the tables in this module.
package veil.authz

import rego.v1

# Smallest number of distinct privacy units behind any released row, by classification level.
min_distinct_units_by_classification := {"L1": 5, "L2": 10, "L3": 10, "L4": 20}

# Most rows one answer may release, by classification; the strictest requested asset decides.
max_rows_by_classification := {"L1": 10000, "L2": 10000, "L3": 10000, "L4": 1000}

max_rows := least({n |
	some a in input.resource.assets
	n := max_rows_by_classification[a.classification]
}) if {
	has_assets
	count(unclassified_assets) == 0
} else := least({n | some n in max_rows_by_classification})

# Differential privacy answers every request: ε and δ per query, and the budget each developer
# organisation (and all of them together) may spend per asset per month. A card's own
# privacy.epsilon_per_period replaces the organisation's default for its asset. Operators'
# modules may change any term: `dp_terms.epsilon_per_period := 20`.
dp_noise := object.union(dp_defaults, {name: value |
	some name, value in data.veil.authz.dp_terms
	dp_defaults[name]
	name != "mode"
})

dp_defaults := {
	"mode": "dp",
	"epsilon": 1.0,
	"delta": 1e-7,
	"epsilon_per_period": 10,
	"delta_per_period": 1e-5,
	"cap_epsilon_per_period": 50,
	"cap_delta_per_period": 1e-4,
}

# Thresholds alone answer only where every asset states that it holds no personal data and an
# operator's module lists it: `thresholds_only_assets contains "transport.counts"`.
thresholds_allowed if {
	has_assets
	every a in input.resource.assets {
		a.personal_data == false
		data.veil.authz.thresholds_only_assets[a.id]
	}
}

noise := {"mode": "thresholds"} if thresholds_allowed

else := dp_noise

classification_rank := {"L1": 1, "L2": 2, "L3": 3, "L4": 4}

# The highest level among the requested assets; unknown levels or no assets count as L4.
strictest_classification := level if {
	has_assets
	count(unclassified_assets) == 0
	top := max({classification_rank[a.classification] | some a in input.resource.assets})
	some level, rank in classification_rank
	rank == top
} else := "L4"

# How a job's outputs are released, by classification: "auto" after the disclosure gate,
# "manual" held for a human reviewer (scope job:release) after it.
review_by_classification := {"L1": "auto", "L2": "auto", "L3": "auto", "L4": "manual"}

# Why a request must wait for a reviewer; operators' modules may add reasons. A query answers
# in its own response and cannot wait, so the gateway refuses one held for review.
manual_review contains "classification" if {
	input.scope == "job:submit"
	review_by_classification[strictest_classification] == "manual"
}

review := "manual" if count(manual_review) > 0

else := "auto"

free_purposes := {"public_welfare", "public_governance"}

# Which of a card's price plans applies, by classification; the card names the rates.
price_plan_by_classification := {"L1": "standard", "L2": "standard", "L3": "standard", "L4": "sensitive"}

strictest_min_distinct_units := greatest({n | some n in min_distinct_units_by_classification})

# Every requested asset sets a floor; operators' modules may add higher ones.
min_distinct_units_floor contains n if {
	some a in input.resource.assets
	n := min_distinct_units_by_classification[a.classification]
}

# Unknown levels and empty or malformed requests get the strictest floor.
min_distinct_units_floor contains strictest_min_distinct_units if count(unclassified_assets) > 0

min_distinct_units_floor contains strictest_min_distinct_units if not has_assets

has_assets if count(input.resource.assets) > 0

unclassified_assets contains a.id if {
	some a in input.resource.assets
	not min_distinct_units_by_classification[a.classification]
}

# Engines order mixed types differently, so a floor that is not a number leaves the obligation
# (and with it the decision) undefined, which fails closed.
min_distinct_units := greatest(min_distinct_units_floor) if {
	every n in min_distinct_units_floor {
		is_number(n)
	}
}

price_plan := "free" if {
	covering_grant.purpose in free_purposes
} else := price_plan_by_classification[strictest_classification]

obligations := {
	"min_distinct_units": min_distinct_units,
	"max_rows": max_rows,
	"noise": noise,
	"price_plan": price_plan,
	"review": review,
}
