"""Privacy budgets in the control store: reserved atomically from many processes, never refunded,
and a question reserved by a process that died stays spent."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from governance import ControlStore
from governance.budgets import EVERYONE, Allowance, BudgetExhausted, Budgets, QuestionInFlight

ROOT = Path(__file__).resolve().parents[2]
ALLOWANCE = Allowance("city.people", epsilon=10.0, delta=1e-5, cap_epsilon=12.0, cap_delta=1e-4)


def ask(url: str, org: str, question: str, epsilon: float = 0.7, stale_after_s: float = 60) -> str:
    """One reservation from a process of its own: "reserved", "exhausted" or "in_flight"."""
    store = ControlStore(url)
    try:
        Budgets(store.engine, stale_after_s).ask(
            question=question, org=org, query_id="q_" + uuid.uuid4().hex, period="2026-12",
            allowances=[ALLOWANCE], epsilon=epsilon, delta=1e-7,
        )  # fmt: skip
        return "reserved"
    except BudgetExhausted as exc:
        return "exhausted_all" if exc.everyone else "exhausted"
    except QuestionInFlight:
        return "in_flight"
    finally:
        store.engine.dispose()


def spends(url: str) -> dict[str, float]:
    store = ControlStore(url)
    spent = {row.spender: row.epsilon for row in Budgets(store.engine, 60).spent("2026-12")}
    store.engine.dispose()
    return spent


def concurrent_spends_never_overspend(url: str) -> None:
    ControlStore(url).engine.dispose()  # migrated once, before the processes race
    questions = [("acme", uuid.uuid4().hex) for _ in range(24)]
    questions += [("globex", uuid.uuid4().hex) for _ in range(8)]
    with ProcessPoolExecutor(4) as pool:
        outcomes = list(pool.map(ask, [url] * 32, *zip(*questions, strict=True)))
    # acme: 10 / 0.7 allows 14. Then everyone's cap of 12 / 0.7 = 17 allows globex 3 more.
    assert outcomes[:24].count("reserved") == 14
    assert outcomes[24:].count("reserved") == 3
    assert set(outcomes[24:]) == {"reserved", "exhausted_all"}
    spent = spends(url)
    assert spent["acme"] == pytest.approx(9.8) and spent[EVERYONE] == pytest.approx(11.9)


def test_concurrent_spends_from_processes_never_overspend_on_sqlite(tmp_path: Path) -> None:
    concurrent_spends_never_overspend(f"sqlite:///{tmp_path / 'control.db'}")


def test_the_same_question_from_two_processes_is_reserved_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    ControlStore(url).engine.dispose()
    with ProcessPoolExecutor(4) as pool:
        outcomes = list(pool.map(ask, [url] * 8, ["acme"] * 8, ["same"] * 8))
    assert outcomes.count("reserved") == 1 and outcomes.count("in_flight") == 7
    assert spends(url)["acme"] == pytest.approx(0.7)


def test_a_process_killed_after_reserving_leaves_its_spend(tmp_path: Path) -> None:
    """Killed between the reservation and the answer: the spend is durable and is not given
    back; once the question is stale, asking it again spends again."""
    url = f"sqlite:///{tmp_path / 'control.db'}"
    script = (
        "import os, sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.governance.test_budgets import ask;"
        "print(ask(sys.argv[2], 'acme', 'lost'), flush=True); os.kill(os.getpid(), 9)"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(ROOT), url], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == -9 and run.stdout.strip() == "reserved"
    assert spends(url)["acme"] == pytest.approx(0.7)
    assert ask(url, "acme", "lost") == "in_flight"  # not yet stale: nothing spent
    assert spends(url)["acme"] == pytest.approx(0.7)
    assert ask(url, "acme", "lost", stale_after_s=0) == "reserved"
    assert spends(url)["acme"] == pytest.approx(1.4)


def test_a_failed_question_is_forgotten_but_its_spend_stands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    assert ask(url, "acme", "failing") == "reserved"
    store = ControlStore(url)
    Budgets(store.engine, 60).forget("failing")
    store.engine.dispose()
    assert ask(url, "acme", "failing") == "reserved"
    assert spends(url)["acme"] == pytest.approx(1.4)


def test_an_answer_is_kept_without_loosening_what_reservations_wait_for(tmp_path: Path) -> None:
    """The answer store's write is not waited onto disk; reservations still are (SQLite's
    synchronous=FULL, 2, on the control store's own connections)."""
    store = ControlStore(f"sqlite:///{tmp_path / 'control.db'}")
    budgets = Budgets(store.engine, 60)
    asked = {"org": "lab", "query_id": "q_1", "period": "2026-12", "allowances": [ALLOWANCE],
             "epsilon": 0.5, "delta": 1e-7}  # fmt: skip
    assert budgets.ask(question="kept", **asked).answer is None
    budgets.answered("kept", '{"rows": [[1]]}')
    assert budgets.ask(question="kept", **asked).answer == '{"rows": [[1]]}'
    with store.engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    assert spends(f"sqlite:///{tmp_path / 'control.db'}")["lab"] == 0.5
