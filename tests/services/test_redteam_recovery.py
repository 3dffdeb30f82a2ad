"""Red team, what a crash leaves of an asset change and what the next start makes of it: a new
data version whose process died between swapping in its data and swapping in its key."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, start_server, stop_server

VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
# A provider's new data version of hospital.visits, through the services as the API does it,
# in a process killed (as by the OOM killer or a node's loss) at the moment its data folder is
# in place and its new key is about to replace the old one.
NEW_VERSION = """
import os, signal, sys, tempfile
from pathlib import Path
from sandbox.cards import parse_card
from sandbox.demo import write_demo_assets
from services import assets
from services.authorisation import authorise, card_resource
from services.metrics import Metrics
from services.runtime import open_services
from services.settings import Settings

veil = open_services(Settings(home=Path(sys.argv[1])), Metrics())
(demo,) = [a for a in write_demo_assets(Path(tempfile.mkdtemp()))
           if parse_card(a.card).id == "hospital.visits"]
card = veil.enclave.store.get("hospital.visits").card
provider = veil.control.principal(card.provider)
permit = authorise(veil, caller=provider, scope="asset:register", resource=card_resource(card))
replace = os.replace

def dying(source, target, *args, **kwargs):
    if str(source).endswith(".wrapped.next"):
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(source, target, *args, **kwargs)

os.replace = dying
assets.register_version(veil, permit=permit, card=card, data=demo.csv_path)
"""


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
