# The operator module the benchmarks' servers load. Benchmarks ask thousands of questions, so
# budgets are wide; the TPC-H tables hold no personal data and answer under thresholds alone,
# as before differential privacy, so their figures stay comparable (bench/tpch_compare.py).
package veil.authz

import rego.v1

dp_terms := {
	"epsilon_per_period": 1000000,
	"cap_epsilon_per_period": 1000000,
	"delta_per_period": 0.01,
	"cap_delta_per_period": 0.1,
}

thresholds_only_assets contains id if {
	some id in ["tpch.lineitem", "tpch.orders", "tpch.customer", "bench.people_open"]
}
