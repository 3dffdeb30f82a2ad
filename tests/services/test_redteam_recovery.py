"""Red team, what a crash leaves of an asset change and what the next start makes of it: a new
data version whose process died between swapping in its data and swapping in its key."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.services import restored
from tests.support import ROOT, start_server, stop_server

VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
# A provider's new data version of hospital.visits, through the services as the API does it,
# in a process killed (as by the OOM killer or a node's loss) at the moment its data folder is
# in place and its new key is about to replace the old one.
NEW_VERSION = restored.new_version_killed("replace", 'str(source).endswith(".wrapped.next")')


def test_a_version_cut_short_between_its_data_and_its_key_still_answers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        grant = server.grant("analyst", ["hospital.visits"], ["city-hospital", "supervisor"])
    finally:
        stop_server(server)
    killed = subprocess.run(
        [sys.executable, "-c", NEW_VERSION, str(home)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (home / "keys" / "assets" / ".hospital.visits.wrapped.next").exists()

    server = start_server(home, command="serve")
    try:
        answer = server.query(VISITS, grant_id=grant)
    finally:
        stop_server(server)
    assert answer.status_code == 200, answer.text
