"""What the restore and re-shred tests share: a demo home copied per test, the services opened
as a gateway opens them, and destruction as the operator asks for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.cards import AssetCard, parse_card
from sandbox.demo import write_demo_assets
from services import assets
from services.authorisation import assets_resource, authorise
from services.demo import set_up_demo
from services.metrics import Metrics
from services.runtime import Services, open_services
from services.settings import Settings

CLAIMS = "insurance.claims"
VISITS = "hospital.visits"


def demo_home(folder: Path) -> Path:
    home = folder / "home"
    set_up_demo(Settings(home=home))
    return home


def copied(demo_home: Path, folder: Path) -> Settings:
    """A copy of the demo's home of its own: no process holds it."""
    shutil.copytree(demo_home, folder / "home")
    return Settings(home=folder / "home")


@contextmanager
def serving(settings: Settings) -> Iterator[Services]:
    """The services as a gateway opens them: recovery and re-shred first."""
    services = open_services(settings, Metrics())
    try:
        yield services
    finally:
        services.close()


def destroy(veil: Services, asset_id: str) -> int:
    """Destroy as the operator does over the API; the destruction's ledger index."""
    operator = veil.control.principal("operator")
    stored = veil.enclave.store.get(asset_id)
    resource = assets_resource(veil, [stored.card])
    permit = authorise(veil, caller=operator, scope="asset:destroy", resource=resource)
    record = assets.destroy_asset(veil, permit=permit, asset=stored, reason="term ended")
    return record["receipt"]["ledger_index"]


def registered_on_its_way(veil: Services, card: AssetCard, data: Path, key: str) -> None:
    """Registered again in the store with its sealed change record, its ledger entry (under
    `key`) not yet written: its process is writing it, or died first."""
    veil.enclave.store.register(
        card.model_dump(mode="json"),
        data,
        lambda stored: {"entry": {"type": "asset_registered", "asset": card.id,
                                  "at": stored.registered_at}, "key": key},
    )  # fmt: skip


def demo_claims(folder: Path) -> tuple[AssetCard, Path]:
    """The demo's claims card and data, written anew."""
    (found,) = [a for a in write_demo_assets(folder) if parse_card(a.card).id == CLAIMS]
    return parse_card(found.card, new=True), found.csv_path


# A new data version of hospital.visits through the services as the API does it, in a process
# killed (as by the OOM killer or a node's loss) at the file operation `call` (os.rename or
# os.replace) whose source path satisfies `matches`, a Python expression over `source`.
_NEW_VERSION_KILLED = """
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
original = os.{call}

def dying(source, target, *args, **kwargs):
    if {matches}:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(source, target, *args, **kwargs)

os.{call} = dying
assets.register_version(veil, permit=permit, card=card, data=demo.csv_path)
"""


def new_version_killed(call: str, matches: str) -> str:
    """The script of a new version killed mid-way; run it with the home as its argument."""
    return _NEW_VERSION_KILLED.format(call=call, matches=matches)
