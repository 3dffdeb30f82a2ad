"""The operations every interface calls (API, console, CLI): authorise, decide, run, record;
they know nothing of HTTP and raise errors with stable codes."""

# DuckDB must be loaded before regopy: the other order aborts the process with a double free
# inside the two native libraries (duckdb 1.5.5, regopy 1.5.2).
import duckdb  # noqa: F401
