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
