# Scope "query:run": a developer runs SQL over assets under one of their grants.
package veil.authz

import rego.v1

scopes contains "query:run"

scope_allows if {
	input.scope == "query:run"
	request_well_formed
	is_developer
	principal_active
	count(requested_assets) > 0
	count(inactive_assets) == 0
	count(unclassified_assets) == 0
	count(covering_grants) > 0
}

deny contains code if {
	input.scope == "query:run"
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
