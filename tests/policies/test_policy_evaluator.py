"""The embedded engine evaluates in a process of its own that never loads DuckDB (rego-cpp's
allocator and DuckDB's mix in one process: native memory kept per evaluation, and crashes),
and an evaluator that dies or hangs is replaced, its decision failing closed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import duckdb

from policies import EmbeddedEngine, embedded
from policies.embedded import TRIAL_INPUT
from policies.engine import POLICY_ERROR


def _evaluator(engine: EmbeddedEngine) -> int:
    process = engine._compiled._evaluator.process  # noqa: SLF001 - the process under test
    assert process is not None
    return process.pid


def _fresh(turn: int) -> dict:
    """The trial input at a time of its own, so no decision comes from the cache."""
    return {**TRIAL_INPUT, "now": f"2026-01-01T00:00:{turn:02d}Z"}


def test_decisions_come_from_a_process_that_holds_rego_and_never_duckdb() -> None:
    duckdb.sql("SELECT 1").fetchall()  # as in the gateway: DuckDB loaded here first
    engine = EmbeddedEngine()
    try:
        assert engine.decide(_fresh(1)).allow
        pid = _evaluator(engine)
        assert pid != os.getpid()
        libraries = Path(f"/proc/{pid}/maps").read_text()
        assert "rego" in libraries and "duckdb" not in libraries
        assert "duckdb" in Path("/proc/self/maps").read_text()
    finally:
        engine.close()


def test_an_evaluator_killed_is_replaced_at_the_next_decision() -> None:
    engine = EmbeddedEngine()
    try:
        first = _evaluator(engine)
        os.kill(first, signal.SIGKILL)
        os.waitpid(first, 0)
        assert engine.decide(_fresh(2)).allow
        assert _evaluator(engine) != first
    finally:
        engine.close()


def test_an_evaluator_that_hangs_fails_its_decision_closed(monkeypatch) -> None:
    monkeypatch.setattr(embedded, "EVALUATION_TIMEOUT_S", 0.5)
    engine = EmbeddedEngine()
    try:
        stuck = _evaluator(engine)
        os.kill(stuck, signal.SIGSTOP)
        denied = engine.decide(_fresh(3))
        assert not denied.allow and denied.reasons == (POLICY_ERROR,)
        assert engine.decide(_fresh(4)).allow  # a new evaluator answers
        assert _evaluator(engine) != stuck
    finally:
        engine.close()
