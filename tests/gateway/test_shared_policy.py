"""The policy set shared by gateway processes, and the watcher that carries stops between
them: each piece on its own, with real Rego engines."""

from __future__ import annotations

import threading
import time

from policies import EmbeddedEngine
from sandbox.changes import ChangeMarker
from services.running import Running, RunningWork
from services.shared_policy import MARKER_FILE, SNAPSHOT_FILE, SharedPolicy

FREEZE = """package veil.authz

import rego.v1

deny contains "maintenance_freeze" if input.scope == "query:run"
"""
INPUT = {
    "scope": "query:run",
    "principal": {"id": "analyst", "roles": ["developer"], "org": "a", "status": "active"},
    "resource": {"assets": [], "columns": {}},
    "request": {"method": "sql", "purpose": None, "grant_id": None},
    "grants": [],
    "now": "2026-01-01T00:00:00Z",
}


def _reasons(policy: SharedPolicy) -> tuple[str, ...]:
    return policy.decide(INPUT).reasons


def test_a_reload_in_one_process_is_what_every_other_decides_with(tmp_path) -> None:
    operator_dir, folder = tmp_path / "operator", tmp_path / "policy"
    operator_dir.mkdir()
    here = SharedPolicy(EmbeddedEngine(operator_dir), folder)
    there = SharedPolicy(EmbeddedEngine(operator_dir), folder)
    assert (folder / SNAPSHOT_FILE).exists()
    assert "maintenance_freeze" not in _reasons(there)

    (operator_dir / "freeze.rego").write_text(FREEZE)
    assert "maintenance_freeze" not in _reasons(there), "an edit counts only once reloaded"
    # A process starting now loads the published set, not the edit on disk.
    late = SharedPolicy(EmbeddedEngine(operator_dir), folder)
    assert "maintenance_freeze" not in _reasons(late)

    published = here.reload()
    assert "maintenance_freeze" in _reasons(there)
    assert "maintenance_freeze" in _reasons(late)
    assert there.loaded().digest == late.loaded().digest == published.digest


def test_a_published_set_that_does_not_match_its_digest_denies_everything(tmp_path) -> None:
    folder = tmp_path / "policy"
    here = SharedPolicy(EmbeddedEngine(), folder)
    there = SharedPolicy(EmbeddedEngine(), folder)
    snapshot = folder / SNAPSHOT_FILE
    snapshot.write_text(snapshot.read_text().replace("package veil.authz", "package veil.other"))
    ChangeMarker(folder / MARKER_FILE).announce()  # as a tampering process would
    decision = there.decide(INPUT)
    assert not decision.allow and decision.reasons == ("policy_error",)
    assert not there.ready()
    here.reload()  # a genuine publication heals every process
    assert there.ready() and "policy_error" not in there.decide(INPUT).reasons


def test_the_watcher_cancels_work_another_process_stopped(tmp_path) -> None:
    stopped = threading.Event()
    running = RunningWork(in_force=lambda work: not stopped.is_set(), interval_s=0.05)
    try:
        with running.track("analyst", "g_1", ["hospital.visits"]) as cancel:
            time.sleep(0.2)
            assert not cancel.is_set()
            stopped.set()  # what another process's suspension looks like from here
            assert cancel.wait(timeout=10)
    finally:
        running.close()


def test_the_watcher_cancels_when_it_cannot_tell(tmp_path) -> None:
    def broken(work: Running) -> bool:
        raise ConnectionError("control store unavailable")

    running = RunningWork(in_force=broken, interval_s=0.05)
    try:
        with running.track("analyst", None, ["hospital.visits"]) as cancel:
            assert cancel.wait(timeout=10)
    finally:
        running.close()
