"""A quiet, clean process: no progress bar, nothing printed by Ctrl-C, no deprecation warnings,
and with VEIL_LOG_FORMAT=json one JSON object per log line, holding no key, SQL or query string.

Each mode starts one real server in a session of its own, as a terminal would, runs a query
and a job through it, then sends SIGINT to its whole process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox.duck import connect
from sandbox.worker import WorkerConfig, WorkerPool
from tests.support import OPERATOR_POLICY, ROOT, VEIL, free_port

# What DuckDB's progress bar draws around its percentage.
PROGRESS_BAR = ("\u2595", "\u2588", "\u258f")
NOISE = ("Traceback", "KeyboardInterrupt", "DeprecationWarning", *PROGRESS_BAR)
FINAL = {"succeeded", "failed", "rejected", "review", "cancelled", "timeout"}
JOB = """
answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")
rows = []
for district, visits in answer["rows"]:
    rows.append([district, visits])
publish("by_district", [["district", "label"], ["visits", "count"]], rows)
"""


@dataclass
class Finished:
    """A server that served, was interrupted, and ended with every process it started."""

    home: Path
    keys: dict[str, str]
    marker: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.stdout + self.stderr).splitlines() if line.strip()]


def _members(group: int) -> list[int]:
    """The processes of a process group still running (zombies await only their reaping)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # it ended while we looked
        if state != "Z" and int(pgrp) == group:
            found.append(int(stat.parent.name))
    return found


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited while starting"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError("the server did not become ready")


def _exercise(url: str, key: str, marker: str) -> None:
    """A query that runs (its key also, wrongly, in the query string), a refused one, a job."""
    sql = (
        "SELECT district, COUNT(*) AS visits FROM hospital.visits "
        f"WHERE district <> '{marker}' GROUP BY district"
    )
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        answered = client.post("/v1/queries", params={"api_key": key}, json={"sql": sql})
        assert answered.status_code == 200, answered.json()
        refused = client.post(
            "/v1/queries",
            json={"sql": f"SELECT patient_name FROM hospital.visits WHERE district = '{marker}'"},
        )
        assert refused.status_code == 422
        submitted = client.post("/v1/jobs", json={"code": JOB})
        assert submitted.status_code == 202, submitted.json()
        job_url = f"/v1/jobs/{submitted.json()['id']}"
        deadline = time.monotonic() + 90
        while (job := client.get(job_url).json())["status"] not in FINAL:
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["status"] == "succeeded", job


def _run(home: Path, command: str, env: dict[str, str], marker: str) -> Finished:
    """`veil COMMAND` until ready, exercised, then Ctrl-C to its group until all of it ends."""
    port = free_port()
    out, err = (home.parent / f"{command}-{port}.{name}" for name in ("out", "err"))
    environment = {
        **os.environ,
        "VEIL_QUERY_TIMEOUT_S": "5",
        "VEIL_POLICY_DIR": str(OPERATOR_POLICY),
        # Shown, not hidden as by default outside __main__: none may appear at all.
        "PYTHONWARNINGS": "default::DeprecationWarning,default::PendingDeprecationWarning",
        **env,
    }
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*VEIL, command, "--home", str(home), "--port", str(port)],
            cwd=ROOT,
            env=environment,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process)
        keys = json.loads((home / "demo-credentials.json").read_text())
        _exercise(url, keys["analyst"], marker)
        os.killpg(process.pid, signal.SIGINT)
        exit_code = process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _members(process.pid):
            assert time.monotonic() < deadline, "processes outlived the interrupted server"
            time.sleep(0.1)
    finally:
        if _members(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    return Finished(home, keys, marker, exit_code, out.read_text(), err.read_text())


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """`veil demo`, set up and served, with the default text log."""
    return _run(tmp_path_factory.mktemp("quiet") / "home", "demo", {}, "zz_text_marker")


@pytest.fixture(scope="module")
def json_run(text_run: Finished) -> Finished:
    """`veil serve` on the same demo home, logging JSON."""
    return _run(text_run.home, "serve", {"VEIL_LOG_FORMAT": "json"}, "zz_json_marker")


@pytest.mark.parametrize("mode", ["text_run", "json_run"])
def test_ctrl_c_stops_every_process_without_a_word(mode: str, request) -> None:
    finished: Finished = request.getfixturevalue(mode)
    assert finished.exit_code == 0
    assert [line for line in finished.lines if any(mark in line for mark in NOISE)] == []


def test_the_text_log_holds_no_key_query_string_or_sql(text_run: Finished) -> None:
    # `veil demo` prints a ready-made command with the analyst's key before it serves.
    logged = text_run.stderr + "\n".join(
        line for line in text_run.stdout.splitlines() if line.startswith("INFO:")
    )
    assert '"POST /v1/queries HTTP/1.1" 200' in logged
    assert [key for key in text_run.keys.values() if key in logged] == []
    assert text_run.marker not in logged
    assert "api_key" not in logged


def test_the_json_log_is_one_object_per_line_without_keys_or_sql(json_run: Finished) -> None:
    entries = [json.loads(line) for line in json_run.lines]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    requests = {
        (entry["method"], entry["path"], entry["status"])
        for entry in entries
        if entry["logger"] == "uvicorn.access"
    }
    assert {("POST", "/v1/queries", 200), ("POST", "/v1/queries", 422)} <= requests
    text = json_run.stdout + json_run.stderr
    assert [key for key in json_run.keys.values() if key in text] == []
    assert json_run.marker not in text
    assert "api_key" not in text


def test_duckdb_connections_and_enclave_workers_draw_no_progress_bar() -> None:
    # DuckDB draws its bar on stdout for any statement past two seconds, terminal or not.
    shown = "SELECT current_setting('enable_progress_bar') AS shown"
    assert connect().execute(shown).fetchall() == [(False,)]
    pool = WorkerPool(lambda: (0, []), WorkerConfig(), size=1)
    try:
        in_worker = pool.run(shown)
    finally:
        pool.close()
    assert in_worker.rows == [[False]]
