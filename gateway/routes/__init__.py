"""HTTP routes: each parses a request and delegates to a service."""
