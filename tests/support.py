"""Running a real Veil server for tests: the demo on a free loopback port."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VEIL = [sys.executable, "-m", "gateway.cli"]


# An asset any test may register (city-hospital provides it) to change the set of assets.
HOUSEHOLDS = {
    "id": "city.households",
    "title": "Households",
    "provider": "city-hospital",
    "classification": "L2",
    "domain": "civil",
    # Answered under thresholds (exact counts): the tests' operator module lists it.
    "rights": {"holder": "city-hospital", "personal_data": False},
    "columns": [
        {"name": "household", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "size", "type": "INTEGER", "role": "dimension"},
    ],
    "revenue_shares_bp": {"city-hospital": 10000},
}


def register_households(server: Server, rows: int) -> httpx.Response:
    """Register HOUSEHOLDS as its provider, with `rows` households of sizes 0 to 3."""
    content = "household,size\n" + "".join(f"h{i},{i % 4}\n" for i in range(rows))
    with server.client("city-hospital") as client:
        return client.post(
            "/v1/assets",
            data={"card": json.dumps(HOUSEHOLDS)},
            files={"file": ("data.csv", io.BytesIO(content.encode()), "text/csv")},
        )


def wait_until(what: str, condition: Callable[[], bool], limit_s: float = 60) -> None:
    """Poll `condition` until it holds; the test fails if it never does within the limit."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    home: Path
    keys: dict[str, str]
    process: subprocess.Popen

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def metrics(self) -> str:
        """/metrics as Prometheus reads it, with the home's metrics token."""
        token = (self.home / "keys" / "metrics.token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        scraped = httpx.get(f"{self.url}/metrics", headers=headers, timeout=30)
        assert scraped.status_code == 200, scraped.text
        return scraped.text

    def query(self, sql: str, who: str = "analyst", **extra: object) -> httpx.Response:
        with self.client(who) as client:
            return client.post("/v1/queries", json={"sql": sql, **extra})

    def ledger(self) -> list[dict]:
        """Every ledger entry's data, parsed, read page by page as the supervisor."""
        items: list[dict] = []
        with self.client("supervisor") as client:
            while page := client.get(
                "/v1/ledger/entries",
                params={"limit": 1000, **({"after": items[-1]["index"]} if items else {})},
            ).json()["items"]:
                items += page
        return [json.loads(item["data"]) for item in items]

    def grant(
        self, who: str, assets: list[str], parties: list[str], methods: tuple = ("sql",)
    ) -> str:
        """A public-welfare grant `who` requests on `assets`, approved by each of `parties`."""
        with self.client(who) as client:
            asked = client.post(
                "/v1/grants",
                json={"assets": assets, "purpose": "public_welfare", "scenario": "s",
                      "methods": list(methods), "valid_until": "2030-01-01T00:00:00Z"},
            )  # fmt: skip
        assert asked.status_code == 201, asked.json()
        self.approve(asked.json()["id"], *parties)
        return asked.json()["id"]

    def approve(self, grant_id: str, *parties: str) -> dict:
        """Approve a grant as each of `parties` in turn; the grant as the last approval left it."""
        body: dict = {}
        for party in parties:
            with self.client(party) as client:
                response = client.post(f"/v1/grants/{grant_id}/approve")
                assert response.status_code == 200, response.json()
                body = response.json()
        return body


# The demo's assets, which the tests' operator module lists for thresholds alone.
DEMO_ASSETS = {"hospital.visits": "city-hospital", "insurance.claims": "insurer"}


def start_server(
    home: Path,
    env: dict[str, str] | None = None,
    command: str = "demo",
    thresholds: bool = True,
) -> Server:
    """Run `veil demo` (or `veil serve` on a home the demo already set up) until ready.

    With `thresholds` (most tests: they check exact counts, suppression and the channels
    around them) the demo's providers state that their cards hold no personal data, and the
    tests' operator module lets thresholds alone answer for them. Without it the demo
    answers as shipped, under differential privacy."""
    port = free_port()
    env = {
        **os.environ,
        "VEIL_QUERY_TIMEOUT_S": "5",
        "VEIL_POLICY_DIR": str(OPERATOR_POLICY),
        **(env or {}),
    }
    log = (home.parent / f"{home.name}-{command}-{port}.log").open("w")
    process = subprocess.Popen(
        [*VEIL, command, "--home", str(home), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.name}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    else:
        process.kill()
        raise RuntimeError("server did not become ready")
    keys = json.loads((home / "demo-credentials.json").read_text())
    server = Server(url, home, keys, process)
    if thresholds and command == "demo":
        _state_no_personal_data(server)
    return server


def _state_no_personal_data(server: Server) -> None:
    for asset, provider in DEMO_ASSETS.items():
        with server.client(provider) as client:
            shown = client.get(f"/v1/assets/{asset}").json()
            if shown["rights"]["personal_data"] is False:
                continue
            catalogued = {"row_count", "registered_at", "version", "revision", "lifecycle"}
            card = {key: value for key, value in shown.items() if key not in catalogued}
            card["rights"]["personal_data"] = False
            changed = client.put(f"/v1/assets/{asset}", json=card)
            assert changed.status_code == 200, changed.json()


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@dataclass
class Opa:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


OPERATOR_POLICY = ROOT / "tests" / "operator_policy"


def start_opa(
    policy_dir: Path = ROOT / "policies",
    operator_dir: Path | None = OPERATOR_POLICY,
    port: int | None = None,
) -> Opa:
    """A real `opa run --server` on loopback, loading the shipped Rego modules.

    With operator_dir (by default the tests' wide budgets) it also loads that directory and
    watches it, as a sidecar would. With `port` it listens there (a restarted sidecar keeps
    its address); otherwise on a free port.
    """
    import shutil

    binary = shutil.which("opa")
    if binary is None:
        raise RuntimeError("no opa binary on PATH; `make test` installs one")
    port = port or free_port()
    modules = sorted(str(p) for p in policy_dir.glob("*.rego") if not p.name.endswith("_test.rego"))
    if operator_dir is not None:
        modules += ["--watch", str(operator_dir)]
    process = subprocess.Popen(
        [binary, "run", "--server", "--addr", f"127.0.0.1:{port}", *modules],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Opa(url, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("OPA did not become healthy")
