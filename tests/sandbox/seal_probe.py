"""A warm parent whose children run raw, unrestricted Python under chosen seal layers.

Production children compile job code with RestrictedPython; these skip that wall, as if it
had been escaped, and report what each probe of the host could still do. Everything else
(the warm parent, the fork, descriptor hygiene, `seal` itself) is the production code.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from sandbox.jobs import child, wire, zygote
from sandbox.jobs.seal import SealLimits, leave_network, seal


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[-1]))
    network_left = leave_network()
    devnull = os.open(os.devnull, os.O_RDWR)

    def probe_main(channel: socket.socket, start: dict[str, Any]) -> int:
        child._keep_only(channel.fileno(), devnull)  # noqa: SLF001 - the production step
        request = json.loads(wire.receive(channel)["code"])
        seal(
            SealLimits(**start["limits"]),
            start["slot"],
            layers=frozenset(request["layers"]),
            network_left=network_left,
        )
        results: dict[str, str] = {}
        exec(request["source"], {"results": results})  # noqa: S102 - the escaped job
        rows = [[name, outcome] for name, outcome in results.items()]
        wire.send(
            channel,
            {"op": "publish", "name": "probe", "columns": ["probe", "outcome"], "rows": rows},
        )
        wire.receive(channel)
        wire.send(channel, {"op": "done"})
        return 0

    zygote.serve(control, probe_main, zygote.probe(network_left))


if __name__ == "__main__":
    main()
