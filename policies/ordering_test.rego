# Unit tests for the comparison-based extremes.
package veil.authz

import rego.v1

test_greatest_is_numeric if {
	greatest({5, 10, 20}) == 20
	greatest([9, 10, 100, 2]) == 100
}

test_least_is_numeric if {
	least({5, 10, 20}) == 5
	least([10, 9]) == 9
}

test_extremes_of_strings if {
	least({"g_b", "g_a", "g_c"}) == "g_a"
	greatest({"L1", "L4", "L2"}) == "L4"
}

test_extremes_of_empty_undefined if {
	not greatest(set())
	not least([])
}
