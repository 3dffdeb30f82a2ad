"""The enclave: encrypted asset store, SQL guard, hardened DuckDB workers."""
