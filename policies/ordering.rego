# Extremes of a collection, computed the same way in rego-cpp and OPA.
package veil.authz

import rego.v1

# rego-cpp 1.5.2's max, min and sort order numbers as text (max({5, 10}) is 5) and its sort of a
# set cannot be indexed, while its comparison operators are numeric: so compare.
greatest(xs) := m if {
	some m in xs
	every x in xs {
		x <= m
	}
}

least(xs) := m if {
	some m in xs
	every x in xs {
		m <= x
	}
}
