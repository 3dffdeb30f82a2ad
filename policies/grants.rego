# Grant coverage: which of the principal's grants authorise the request, and why the others do not.
#
# Grants are handled by their index in input.grants: rego-cpp builds sets of objects slowly. Set
# comprehensions avoid `some k, v in` because rego-cpp 1.5.2 cannot parse it inside `{…}`.
package veil.authz

import rego.v1

own_grants := {i | some i; input.grants[i].developer == input.principal.id}

grant_check_names := [
	"grant_inactive",
	"method_not_granted",
	"asset_not_granted",
	"purpose_mismatch",
	"grant_not_yet_valid",
	"grant_expired",
	"column_not_granted",
]

# Every check of grant g at once, named by the reason it gives when false: true when g allows
# that part of the request, false when it does not. One object, not a function per check:
# rego-cpp spends more on each call than on the comparison inside. A grant too malformed to
# tell leaves the object undefined.
grant_checks(g) := {
	"grant_inactive": g.status == "active",
	"method_not_granted": input.request.method in g.methods,
	"asset_not_granted": count(requested_assets - {a | some a in g.assets}) == 0,
	"purpose_mismatch": requested_purpose in {null, g.purpose},
	"grant_not_yet_valid": time_ns(g.valid_from) <= now_ns,
	"grant_expired": now_ns < time_ns(g.valid_until),
	"column_not_granted": count(ungranted_columns(g)) == 0,
}

# A narrowing that does not list an asset grants none of that asset's columns; one that is not an
# object leaves this undefined. (A comprehension, not nested `every`: rego-cpp 1.5.2 evaluates
# nested `every` as false.)
ungranted_columns(g) := set() if {
	g.columns == null
} else := {[a, c] |
	some a in requested_assets
	some c in requested_columns(a)
	not c in object.get(g.columns, a, [])
} if {
	is_object(g.columns)
}

grant_well_formed(g) if {
	is_string(g.id)
	is_string(g.status)
	is_array(g.assets)
	is_array(g.methods)
	narrowing_well_formed(g.columns)
}

narrowing_well_formed(columns) if columns == null

narrowing_well_formed(columns) if is_object(columns)

# The checks above, inlined cheapest first: rego-cpp spends more on each function call than on
# the comparison inside, and this runs for every grant of every request. Keep the two in step;
# grants_test.rego checks that they agree.
covering_grants := {i |
	some i in own_grants
	g := input.grants[i]
	requested_grant_id in {null, g.id}
	is_string(g.id)
	g.status == "active"
	input.request.method in g.methods
	count(requested_assets - {a | some a in g.assets}) == 0
	requested_purpose in {null, g.purpose}
	time_ns(g.valid_from) <= now_ns
	now_ns < time_ns(g.valid_until)
	count(ungranted_columns(g)) == 0
}

# The smallest id makes the choice deterministic when several grants cover the request.
covering_grant_id := least({input.grants[i].id | some i in covering_grants})

covering_grant := input.grants[i] if {
	some i in covering_grants
	input.grants[i].id == covering_grant_id
}

grant_pinned(_) if requested_grant_id == null

grant_pinned(g) if g.id == requested_grant_id

# Explanations are only computed for denials, so their cost never slows an allowed request.
# Only grants naming every requested asset are explained one by one; when there are none the
# reason is asset_not_granted, so grants for other data cost a denial nothing.
explained_grants := {i |
	count(covering_grants) == 0
	some i in candidate_grants
	assets := input.grants[i].assets
	is_array(assets)
	count(requested_assets - {a | some a in assets}) == 0
}

grant_problems := {i: problems_of(input.grants[i]) | some i in explained_grants}

problems_of(g) := {"grant_malformed"} if {
	not grant_well_formed(g)
} else := {name | some name in grant_check_names; checks[name] == false} if {
	checks := grant_checks(g)
} else := {"grant_malformed"}

# A pinned grant_id narrows the explanation to that grant.
candidate_grants := {i | some i in own_grants; grant_pinned(input.grants[i])}

# The grants nearest to covering the request explain it.
fewest_problems := least({count(problems) | some problems in grant_problems})

specific_grant_reasons := {code |
	some i in explained_grants
	count(grant_problems[i]) == fewest_problems
	some code in grant_problems[i]
}

grant_reasons contains "grant_not_found" if pinned_grant_missing

grant_reasons contains code if {
	count(covering_grants) == 0
	some code in specific_grant_reasons
}

grant_reasons contains "asset_not_granted" if {
	count(covering_grants) == 0
	count(candidate_grants) > 0
	count(explained_grants) == 0
}

grant_reasons contains "no_covering_grant" if {
	count(covering_grants) == 0
	count(candidate_grants) == 0
	not pinned_grant_missing
}

pinned_grant_missing if {
	requested_grant_id != null
	count(candidate_grants) == 0
}
