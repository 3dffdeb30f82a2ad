"""The no-governance baseline for the load benchmark: FastAPI running the SQL it is sent on
DuckDB, with no key, policy, guard, threshold or ledger. Bench only; it binds loopback.

Run: .venv/bin/python bench/baseline_app.py PROCESSES PORT
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import duckdb
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from gateway.serving import NoDelayHTTP
from sandbox.demo import write_demo_assets


class Query(BaseModel):
    sql: str


def create_app() -> FastAPI:
    # As in the enclave: no progress bar drawn into the server's log.
    connection = duckdb.connect(config={"threads": 1})
    connection.execute("SET enable_progress_bar = false")  # a session setting, not a global
    with tempfile.TemporaryDirectory() as folder:
        for asset in write_demo_assets(Path(folder)):
            namespace = asset.card["id"].split(".")[0]
            columns = {c["name"]: c["type"] for c in asset.card["columns"]}
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {namespace}")
            connection.execute(
                f"CREATE TABLE {asset.card['id']} AS SELECT * FROM read_csv(?, header = true, "
                f"columns = {columns!r})",
                [str(asset.csv_path)],
            )
    app = FastAPI()

    @app.post("/v1/queries")
    def query(body: Query) -> dict:
        cursor = connection.cursor()  # one per request: DuckDB connections are not shared
        try:
            result = cursor.execute(body.sql)
            columns = [d[0] for d in result.description]
            return {"columns": columns, "rows": [list(row) for row in result.fetchall()]}
        finally:
            cursor.close()

    @app.get("/readyz")
    def ready() -> dict:
        return {"status": "ready"}

    return app


if __name__ == "__main__":
    processes, port = int(sys.argv[1]), int(sys.argv[2])
    # The same uvicorn set-up as `veil serve`, so the two differ only in governance.
    uvicorn.run(
        "baseline_app:create_app",
        factory=True,
        workers=processes,
        http=NoDelayHTTP,
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
