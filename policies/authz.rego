# Veil authorisation: one decision per request scope (contract in docs/policies.md).
#
# Each scope lives in its own module, adds its name to `scopes`, defines `scope_allows` for
# itself and adds its denial codes to `deny`. Operators' modules, loaded beside these, can add
# codes to `deny` (always denying), values to `min_distinct_units_floor` (raising the group
# size) and reasons to `manual_review` (holding outputs for a reviewer); all are sets, so they
# add to the shipped rules instead of conflicting with them.
package veil.authz

import rego.v1

# Only reached when a part below is undefined, which is a policy bug: fail closed.
default decision := {
	"allow": false,
	"reasons": ["policy_incomplete"],
	"grant_id": null,
	"obligations": {
		"min_distinct_units": 20,
		"max_rows": 1000,
		"noise": {"mode": "dp", "epsilon": 1.0, "delta": 1e-7, "epsilon_per_period": 10, "delta_per_period": 1e-5, "cap_epsilon_per_period": 50, "cap_delta_per_period": 1e-4},
		"price_plan": "sensitive",
		"review": "manual",
	},
}

decision := {
	"allow": allow,
	"reasons": reasons,
	"grant_id": grant_id,
	"obligations": obligations,
}

default allow := false

allow if {
	scope_covered
	scope_allows
	count(deny) == 0
}

# A named rule, not `not input.scope in scopes`: OPA leaves that false when input.scope is absent.
deny contains "scope_not_covered" if not scope_covered

scope_covered if input.scope in scopes

# A denial always names at least one reason, even when no rule said why.
reasons := [] if {
	allow
} else := sort([code | some code in deny]) if {
	count(deny) > 0
} else := ["not_allowed"]

default grant_id := null

grant_id := covering_grant_id if allow
