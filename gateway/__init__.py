"""Veil gateway: the HTTP surface (FastAPI), authentication, CLI and metrics."""

# DuckDB must be loaded before regopy: the other order aborts the process with a double free
# inside the two native libraries (duckdb 1.5.5, regopy 1.5.2).
import duckdb  # noqa: F401
