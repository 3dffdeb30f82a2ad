"""DuckDB connections: the shipped crypto extension and the locked-down configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

# Never reach for DuckDB's extension repository: extensions come only from wheels we pin.
# No spill directory by default: DuckDB's `.tmp` in the working directory would hold plaintext
# pages of uploads and query state outside the encrypted store. A worker may be given one of its
# own (`Limits.spill_directory`), where every temporary file is encrypted.
BASE_CONFIG = {
    "temp_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}

LOCKED_SETTINGS = {
    "temp_file_encryption": "true",
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
    # Where a query larger than memory spills, encrypted, up to `max_temp_directory_size`;
    # without one it fails (out of memory) instead.
    spill_directory: str = ""
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
    if limits.spill_directory:
        # Writing encrypted temporary files takes the full crypto module, as writing an asset does.
        connection.execute(f"LOAD '{httpfs_extension_path()}'")
        connection.execute(f"SET temp_directory = '{_quoted(limits.spill_directory)}'")
    spill = limits.max_temp_directory_size if limits.spill_directory else "0B"
    connection.execute(f"SET max_temp_directory_size = '{_quoted(spill)}'")
    for name, value in LOCKED_SETTINGS.items():
        connection.execute(f"SET {name} = {value}")
    assert_locked(connection)


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def assert_locked(connection: duckdb.DuckDBPyConnection) -> None:
    for name, expected in LOCKED_SETTINGS.items():
        (value,) = connection.execute(f"SELECT current_setting('{name}')").fetchone()
        if str(value).lower() != expected:
            raise RuntimeError(f"DuckDB setting {name} did not hold")
