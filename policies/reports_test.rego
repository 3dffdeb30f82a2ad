# Unit tests for the report scopes: who reads a holder's supervision report and the revenue
# distribution (a provider's lines are narrowed by the service, as its settlement is).
package veil.authz

import rego.v1

holder_input(principal, holder) := role_input("report:supervision", principal, {"holder": holder})

test_a_provider_reads_its_own_supervision_report if {
	decision.allow with input as holder_input(provider, "city-hospital")
}

test_a_provider_is_refused_alike_for_another_holder_and_for_none if {
	other := decision with input as holder_input(provider, "insurer")
	nobody := decision with input as holder_input(provider, "no-such-holder")
	other.reasons == ["not_holder"]
	nobody.reasons == other.reasons
}

test_overseers_read_any_holder if {
	every role in ["supervisor", "operator"] {
		decision.allow with input as holder_input(as_roles([role]), "insurer")
	}
}

test_developers_and_admin_read_no_report if {
	every role in ["developer", "admin"] {
		every scope in ["report:supervision", "report:distribution"] {
			d := decision with input as role_input(scope, as_roles([role]), {"holder": "someone"})
			"role_not_permitted" in d.reasons
		}
	}
}

test_a_supervision_report_without_a_holder_is_invalid if {
	every resource in [{}, {"holder": 7}, {"holder": null}] {
		d := decision with input as role_input("report:supervision", as_roles(["supervisor"]), resource)
		d.reasons == ["invalid_input"]
	}
}

test_the_distribution_is_read_by_providers_and_overseers if {
	readers := {role |
		some role in everyone
		decision.allow with input as role_input("report:distribution", as_roles([role]), {})
	}
	readers == {"provider", "supervisor", "operator"}
}
