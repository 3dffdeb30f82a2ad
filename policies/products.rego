# Data product descriptions name the product as resource.product: who filed it, for which
# organisation, on which assets. Only the developer who filed a product withdraws it.
package veil.authz

import rego.v1

resource_product := p if {
	p := input.resource.product
	is_string(p.developer)
}

relation_denials contains "invalid_input" if {
	input.scope == "product:withdraw"
	not resource_product
}

relation_denials contains "not_product_developer" if {
	input.scope == "product:withdraw"
	resource_product.developer != input.principal.id
}
