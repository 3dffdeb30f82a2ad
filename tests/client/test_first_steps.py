"""docs/examples/first_steps.py runs whole against the live demo, as a reader would run it."""

from __future__ import annotations

import os
import subprocess
import sys

from ledger.checkpoints import public_key_b64
from ledger.keys import load_signing_key
from tests.client.onboarding import onboard
from tests.support import ROOT, Server


def test_the_first_steps_example_runs(demo: Server) -> None:
    reader = onboard(demo, "example-dev", methods=("sql", "job"))
    pinned = public_key_b64(load_signing_key(demo.home / "keys" / "ledger-signing.key"))
    env = {
        **os.environ,
        "VEIL_URL": demo.url,
        "VEIL_API_KEY": reader.key,
        "VEIL_LEDGER_PUBLIC_KEY": pinned,
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "first_steps.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert "hospital.visits - " in run.stdout and "Cangshan" in run.stdout
    assert "is in the log of" in run.stdout
    assert "succeeded" in run.stderr and "by_district ['district', 'visits']" in run.stdout
