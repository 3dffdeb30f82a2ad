"""A zygote whose job processes run raw, unrestricted Python under chosen seal layers.

Production children compile job code with RestrictedPython; these skip that wall, as if it
had been escaped, and report what each probe of the host could still do. Everything else
(the zygote, the fork and exec of a fresh interpreter, descriptor hygiene, `seal` itself) is
the production code. `python seal_probe.py zygote FD` is the zygote (`zygote-without-namespaces` one that may not
leave the network); `... child FD START` a job.
"""

from __future__ import annotations

import json
import os
import resource  # noqa: F401 - imported before the seal, for the probes to use after it
import select  # noqa: F401
import socket
import sys
import time  # noqa: F401
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sandbox.jobs import child, wire, zygote  # noqa: E402 - after the path is set
from sandbox.jobs.seal import SealLimits, leave_network, seal  # noqa: E402

CHILD_COMMAND = (sys.executable, "-I", str(Path(__file__).resolve()), "child")


def zygote_main(*, namespaces: bool) -> None:
    """`namespaces=False` is a pod under RuntimeDefault seccomp, where unshare is refused."""
    control = socket.socket(fileno=int(sys.argv[-1]))
    network_left = leave_network() if namespaces else False
    layers = zygote.probe(network_left)
    zygote.serve(control, CHILD_COMMAND, layers, network_left=network_left)


def child_main() -> None:
    channel = socket.socket(fileno=int(sys.argv[-2]))
    start = json.loads(sys.argv[-1])
    child.keep_only(channel.fileno())
    request = json.loads(wire.receive(channel)["code"])
    parent = os.getppid()  # the zygote: a process of the same user, as the gateway is
    seal(
        SealLimits(**start["limits"]),
        start["slot"],
        layers=frozenset(request["layers"]),
        network_left=start["network_left"],
    )
    results: dict[str, str] = {}

    def ask(text: str) -> dict:
        wire.send(channel, {"op": "sql", "sql": text})
        return wire.receive(channel)

    exec(request["source"], {"results": results, "PARENT": parent, "ASK": ask})  # noqa: S102 - the escaped job
    rows = [[name, outcome] for name, outcome in results.items()]
    wire.send(channel, {"op": "publish", "name": "probe", "columns": ["probe", "outcome"],
                        "rows": rows})  # fmt: skip
    wire.receive(channel)
    wire.send(channel, {"op": "done"})
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "child":
        child_main()
    else:
        zygote_main(namespaces=sys.argv[1] == "zygote")
