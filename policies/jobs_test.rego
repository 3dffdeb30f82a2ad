# Unit tests for the job scopes: who reads, cancels and releases which job.
package veil.authz

import rego.v1

fixture_job := {"id": "j_1", "developer": "analyst", "reviewers": ["city-hospital"], "status": "review"}

job_input(scope, principal) := role_input(scope, principal, {"job": fixture_job})

other_provider := patched(fixture_principal, {"id": "insurer", "roles": ["provider"]})

operator := patched(fixture_principal, {"id": "ops", "roles": ["operator"]})

supervisor := patched(fixture_principal, {"id": "sup", "roles": ["supervisor"]})

other_developer := patched(fixture_principal, {"id": "fintech"})

test_developer_reads_and_cancels_only_own_jobs if {
	decision.allow with input as job_input("job:read", fixture_principal)
	decision.allow with input as job_input("job:cancel", fixture_principal)
	d := decision with input as job_input("job:read", other_developer)
	d.reasons == ["not_job_party"]
	e := decision with input as job_input("job:cancel", other_developer)
	e.reasons == ["not_job_party"]
}

test_provider_reviews_only_jobs_on_its_assets if {
	decision.allow with input as job_input("job:read", provider)
	decision.allow with input as job_input("job:release", provider)
	d := decision with input as job_input("job:release", other_provider)
	d.reasons == ["not_job_party"]
	e := decision with input as job_input("job:read", other_provider)
	e.reasons == ["not_job_party"]
}

test_operator_releases_any_job_and_supervisor_reads_any if {
	decision.allow with input as job_input("job:release", operator)
	decision.allow with input as job_input("job:read", supervisor)
	decision.allow with input as job_input("job:cancel", supervisor)
	d := decision with input as job_input("job:release", supervisor)
	"role_not_permitted" in d.reasons
	not d.allow
}

test_nobody_releases_own_job if {
	both := patched(fixture_principal, {"roles": ["developer", "provider"]})
	job := patched(fixture_job, {"reviewers": ["analyst"]})
	d := decision with input as role_input("job:release", both, {"job": job})
	"own_job" in d.reasons
	not d.allow
}

test_release_and_cancel_need_a_job if {
	d := decision with input as role_input("job:release", operator, {})
	d.reasons == ["invalid_input"]
	e := decision with input as role_input("job:cancel", operator, {})
	e.reasons == ["invalid_input"]
}

test_listing_jobs_needs_no_resource if {
	decision.allow with input as role_input("job:read", provider, {})
}
