# The operator module every test server loads unless a test brings its own. A session-wide
# demo answers thousands of questions, so its budgets are wide (budget tests use the shipped
# terms); and the demo's assets, once their cards say they hold no personal data (as
# tests.support.start_server has them say), answer under thresholds alone.
package veil.authz

import rego.v1

dp_terms := {
	"epsilon_per_period": 1000000,
	"cap_epsilon_per_period": 1000000,
	"delta_per_period": 0.01,
	"cap_delta_per_period": 0.1,
}

thresholds_only_assets contains "hospital.visits"

thresholds_only_assets contains "insurance.claims"

thresholds_only_assets contains "transport.loose"

thresholds_only_assets contains "transport.strict"

thresholds_only_assets contains "retail.sales"

thresholds_only_assets contains "city.households"
