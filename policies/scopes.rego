# Scopes decided by the principal's roles and its relation to the resource (not by grants).
#
# Every scope but query:run and job:submit lives here. A request is allowed when the principal
# is active, holds one of the scope's roles, and no relation rule below denies it.
package veil.authz

import rego.v1

everyone := {"admin", "operator", "provider", "developer", "supervisor"}

# Operators tune who may act in each scope here; relation rules below narrow some further.
scope_roles := {
	"catalog:read": everyone,
	"asset:register": {"operator", "provider"},
	"asset:destroy": {"operator"},
	"grant:request": {"developer"},
	"grant:read": everyone,
	"grant:approve": {"provider", "supervisor"},
	"grant:revoke": {"provider", "supervisor", "operator"},
	"job:read": {"developer", "provider", "supervisor", "operator"},
	"job:cancel": {"developer", "supervisor", "operator"},
	"job:release": {"provider", "operator"},
	"ledger:read": everyone,
	"usage:read": everyone,
	"settlement:read": {"provider", "supervisor", "operator"},
	"budget:read": {"developer", "supervisor", "operator"},
	"principal:manage": {"admin"},
	"emergency:suspend": {"supervisor", "operator"},
	"emergency:resume": {"supervisor", "operator"},
	"policy:read": {"operator", "supervisor", "admin"},
	"policy:reload": {"operator"},
	"twin:read": {"developer", "provider", "supervisor", "operator"},
	# Price caps are public rules: anyone reads them; supervisors set and remove them.
	"price_cap:read": everyone,
	"price_cap:set": {"supervisor"},
	"price_cap:remove": {"supervisor"},
	# Data product descriptions: developers file and withdraw their own (policies/products.rego);
	# who reads which the service narrows (its organisation's, its assets', or all).
	"product:file": {"developer"},
	"product:read": {"developer", "provider", "supervisor", "operator"},
	"product:withdraw": {"developer"},
	# The registration procedure (数据资产登记): holders open and apply, operators review first
	# and publish the notice, supervisors re-review, resolve objections and register; anyone
	# may read the register and notices, and object.
	"registration:read": everyone,
	"registration:open": {"operator", "provider"},
	"registration:apply": {"operator", "provider"},
	"registration:attach": {"operator", "provider"},
	"registration:withdraw": {"operator", "provider"},
	"registration:review": {"operator"},
	"registration:re_review": {"supervisor"},
	"registration:publish": {"operator"},
	"registration:object": everyone,
	"registration:resolve": {"supervisor"},
	"registration:register": {"supervisor"},
	"registration:reject": {"operator", "supervisor"},
	"registration:documents": {"operator", "provider", "supervisor"},
	# Reports from the ledger: a provider reads its own (relation rules below); developers none.
	"report:supervision": {"provider", "supervisor", "operator"},
	"report:distribution": {"provider", "supervisor", "operator"},
}

scopes contains scope if some scope in object.keys(scope_roles)

role_scope if input.scope in object.keys(scope_roles)

scope_allows if {
	role_scope
	count(role_denials) == 0
}

deny contains code if {
	role_scope
	some code in role_denials
}

principal_well_formed if {
	is_string(input.principal.id)
	is_array(input.principal.roles)
}

holds_scope_role if {
	some role in input.principal.roles
	role in scope_roles[input.scope]
}

holds_role(role) if role in input.principal.roles

role_denials contains "invalid_input" if not principal_well_formed

role_denials contains "role_not_permitted" if not holds_scope_role

role_denials contains "principal_inactive" if not principal_active

role_denials contains code if {
	principal_well_formed
	some code in relation_denials
}

# Providers register only their own assets; operators register for anyone.
relation_denials contains "invalid_input" if {
	input.scope == "asset:register"
	count(object.get(input.resource, "assets", [])) != 1
}

relation_denials contains "not_asset_provider" if {
	input.scope == "asset:register"
	not holds_role("operator")
	some a in input.resource.assets
	a.provider != input.principal.id
}

# A holder acts only on its own assets' registrations (and reads only their documents).
relation_denials contains "not_asset_holder" if {
	input.scope in {
		"registration:open", "registration:apply", "registration:attach",
		"registration:withdraw", "registration:documents",
	}
	not holds_role("operator")
	not holds_role("supervisor")
	not input.resource.registration.holder == input.principal.id
}

# A developer cannot ask for a grant on an asset that is suspended or otherwise not active.
relation_denials contains "asset_inactive" if {
	input.scope == "grant:request"
	some a in object.get(input.resource, "assets", [])
	not a.status == "active"
}

# Grant scopes name the grant as resource.grant: its developer and the parties who approve it.

resource_grant := g if {
	g := input.resource.grant
	is_string(g.developer)
	is_array(g.parties)
}

# Listing grants has no resource grant: the gateway lists the caller's own only.
relation_denials contains "invalid_input" if {
	input.scope in {"grant:approve", "grant:revoke"}
	not resource_grant
}

# Providers approve for themselves; supervisors for the party no principal id can spell.
grant_party if {
	holds_role("provider")
	input.principal.id in resource_grant.parties
}

grant_party if {
	holds_role("supervisor")
	"role:supervisor" in resource_grant.parties
}

relation_denials contains "not_grant_party" if {
	input.scope == "grant:approve"
	not grant_party
}

relation_denials contains "not_grant_party" if {
	input.scope == "grant:revoke"
	not holds_role("operator")
	not grant_party
}

relation_denials contains "not_grant_party" if {
	input.scope == "grant:read"
	resource_grant
	not grant_reader
}

grant_reader if resource_grant.developer == input.principal.id

grant_reader if grant_party

grant_reader if holds_role("operator")

grant_reader if holds_role("admin")

# Job scopes name the job as resource.job: its developer and the providers who review it.

resource_job := j if {
	j := input.resource.job
	is_string(j.developer)
	is_array(j.reviewers)
}

# Listing jobs has no resource job: the gateway lists what the caller may see.
relation_denials contains "invalid_input" if {
	input.scope in {"job:cancel", "job:release"}
	not resource_job
}

job_owner if resource_job.developer == input.principal.id

job_reviewer if {
	holds_role("provider")
	input.principal.id in resource_job.reviewers
}

job_reviewer if holds_role("operator")

# Developers see and cancel their own jobs; providers see and release the jobs on their assets.
relation_denials contains "not_job_party" if {
	input.scope == "job:read"
	resource_job
	not job_owner
	not job_reviewer
	not holds_role("supervisor")
}

relation_denials contains "not_job_party" if {
	input.scope == "job:cancel"
	not job_owner
	not holds_role("operator")
	not holds_role("supervisor")
}

relation_denials contains "not_job_party" if {
	input.scope == "job:release"
	not job_reviewer
}

# Whoever wrote a job does not release it, whatever other roles they hold.
relation_denials contains "own_job" if {
	input.scope == "job:release"
	job_owner
}

# A synthetic twin (resource.assets: the one asset) is read by the asset's provider, by
# supervisors and operators, and by a developer holding an active grant on it, in its term.
relation_denials contains "invalid_input" if {
	input.scope == "twin:read"
	count(object.get(input.resource, "assets", [])) != 1
}

relation_denials contains code if {
	input.scope == "twin:read"
	holds_scope_role
	not twin_reader
	code := twin_denial
}

twin_denial := "asset_not_granted" if {
	holds_role("developer")
} else := "not_asset_provider"

twin_reader if holds_role("operator")

twin_reader if holds_role("supervisor")

twin_reader if {
	holds_role("provider")
	some a in input.resource.assets
	a.provider == input.principal.id
}

twin_reader if {
	holds_role("developer")
	some a in input.resource.assets
	a.status == "active"
	some g in input.grants
	g.developer == input.principal.id
	g.status == "active"
	a.id in g.assets
	time_ns(g.valid_from) <= now_ns
	now_ns < time_ns(g.valid_until)
}

# A supervision report names its holder as resource.holder: a provider reads its own alone,
# refused alike whether or not the holder it names exists; supervisors and operators read any.
relation_denials contains "invalid_input" if {
	input.scope == "report:supervision"
	not is_string(object.get(input.resource, "holder", null))
}

relation_denials contains "not_holder" if {
	input.scope == "report:supervision"
	not holds_role("supervisor")
	not holds_role("operator")
	input.resource.holder != input.principal.id
}
