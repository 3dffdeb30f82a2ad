"""DuckDB connections: the shipped crypto extension and the locked-down configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

# Never reach for DuckDB's extension repository: extensions come only from wheels we pin.
# No spill directory: DuckDB's default `.tmp` in the working directory would hold plaintext
# pages of uploads and query state outside the encrypted store.
BASE_CONFIG = {
    "temp_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}

LOCKED_SETTINGS = {
    "enable_external_access": "false",
    "allow_community_extensions": "false",
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "lock_configuration": "true",
}


@dataclass(frozen=True)
class Limits:
    memory_limit: str = "1GB"
    threads: int = 1
    max_temp_directory_size: str = "0B"


def httpfs_extension_path() -> Path:
    """The httpfs build from the pinned wheel: it carries the crypto needed to write."""
    import duckdb_extension_httpfs

    root = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    version = f"v{duckdb.__version__}"
    path = root / version / "httpfs.duckdb_extension"
    if not path.is_file():
        raise RuntimeError(f"httpfs extension for DuckDB {version} is not installed")
    return path


def connect(**settings: str | int) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the base configuration (and `settings`), drawing nothing."""
    connection = duckdb.connect(config=dict(BASE_CONFIG, **settings))
    # DuckDB draws a progress bar on the process's stdout (the server's log) for any statement
    # running past two seconds, terminal or not; it is a session setting, not a global one.
    connection.execute("SET enable_progress_bar = false")
    return connection


def writer_connection() -> duckdb.DuckDBPyConnection:
    """A connection that may read an upload and write an encrypted database."""
    connection = connect(threads=2, memory_limit="2GB")
    connection.execute(f"LOAD '{httpfs_extension_path()}'")
    return connection


def attach_sql(catalog: str, path: Path, key: str, *, read_only: bool) -> str:
    mode = ", READ_ONLY" if read_only else ""
    return f"ATTACH '{path}' AS \"{catalog}\" (ENCRYPTION_KEY '{key}'{mode})"


def lock_down(connection: duckdb.DuckDBPyConnection, limits: Limits) -> None:
    """Apply limits, cut off files, network and extensions, lock, then check it held."""
    connection.execute(f"SET memory_limit = '{limits.memory_limit}'")
    connection.execute(f"SET threads = {int(limits.threads)}")
    connection.execute(f"SET max_temp_directory_size = '{limits.max_temp_directory_size}'")
    for name, value in LOCKED_SETTINGS.items():
        connection.execute(f"SET {name} = {value}")
    assert_locked(connection)


def assert_locked(connection: duckdb.DuckDBPyConnection) -> None:
    for name, expected in LOCKED_SETTINGS.items():
        (value,) = connection.execute(f"SELECT current_setting('{name}')").fetchone()
        if str(value).lower() != expected:
            raise RuntimeError(f"DuckDB setting {name} did not hold")
