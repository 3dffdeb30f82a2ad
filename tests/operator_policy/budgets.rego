# The operator module every test server loads unless a test brings its own: a session-wide
# demo answers thousands of questions, so its budgets are wide. Budget tests use the defaults.
package veil.authz

import rego.v1

dp_terms := {"epsilon_per_period": 1000000, "cap_epsilon_per_period": 1000000}
