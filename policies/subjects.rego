# Facts about the requesting principal and the requested resource, shared by every scope.
package veil.authz

import rego.v1

is_developer if "developer" in input.principal.roles

principal_active if input.principal.status == "active"

# Assets named by the columns count as requested too, so a column can never slip past the
# asset checks.
requested_assets := described_assets | {id | some id in object.keys(input.resource.columns)}

described_assets := {a.id | some a in input.resource.assets}

requested_columns(asset) := {c | some c in input.resource.columns[asset]}

inactive_assets contains a.id if {
	some a in input.resource.assets
	not a.status == "active"
}

requested_purpose := object.get(input.request, "purpose", null)

requested_grant_id := object.get(input.request, "grant_id", null)

now_ns := time_ns(input.now)

# rego-cpp 1.5.2's time.parse_rfc3339_ns leaves "…Z" undefined while it parses "…+00:00", the
# same instant; rewriting the suffix keeps both engines (rego-cpp and OPA) in agreement.
time_ns(t) := time.parse_rfc3339_ns(concat("", [substring(t, 0, count(t) - 1), "+00:00"])) if {
	upper(substring(t, count(t) - 1, 1)) == "Z"
} else := time.parse_rfc3339_ns(t)

request_well_formed if {
	is_string(input.principal.id)
	is_array(input.principal.roles)
	is_array(input.resource.assets)
	every a in input.resource.assets {
		is_string(a.id)
	}
	is_object(object.get(input.resource, "columns", {}))
	every asset, cols in object.get(input.resource, "columns", {}) {
		asset in described_assets
		is_array(cols)
	}
	input.request.method == data_scope_methods[input.scope]
	is_array(input.grants)
	is_number(now_ns)
}
