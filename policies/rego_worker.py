"""The embedded engine's evaluator: a process of its own that holds rego-cpp and never DuckDB.

rego-cpp (regopy 1.5.2), as the engine drives it, keeps about 90 KB of native memory per
evaluation (the gateway grew by ~195 MB a minute under load), and next to DuckDB some of its
built-ins crash. Here it runs alone, and the gateway replaces it every so many decisions.

One JSON line in, one JSON line out, on stdin and stdout: first `{"modules": [[name, source],
…], "entrypoint": …}`, answered `{"ok": true}` or `{"ok": false, "error": …}`; then each
`{"input": …}`, answered `{"result": …}` or `{"error": …}`. It ends when its stdin closes
(its gateway is gone)."""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from regopy import Interpreter, Node, Output, RegoError
from regopy.rego_shared import rego_node_value


def serve(lines: TextIO, out: TextIO) -> None:
    first = json.loads(lines.readline() or "null")
    if not isinstance(first, dict):
        return
    entrypoint = first["entrypoint"]
    interpreter = Interpreter()
    try:
        for name, source in first["modules"]:
            interpreter.add_module(name, source)
        bundle = interpreter.build(None, [entrypoint])
        compiled = bundle.ok()
    except RegoError as exc:
        _reply(out, {"ok": False, "error": str(exc)})
        return
    _reply(out, {"ok": compiled} if compiled else {"ok": False, "error": "does not compile"})
    if not compiled:
        return
    for line in lines:
        try:
            interpreter.set_input_term(json.dumps(json.loads(line)["input"], allow_nan=False))
            output = interpreter.query_bundle_entrypoint(bundle, entrypoint)
            _reply(out, {"result": raw_decision(output)})
        except Exception as exc:  # noqa: BLE001 - the gateway fails the decision closed
            _reply(out, {"error": f"{type(exc).__name__}: {exc}"})


def raw_decision(output: Output) -> object | None:
    """The decision document in a query output, or None when it is undefined."""
    if not output.ok():
        raise RuntimeError("; ".join(_error_text(output.node())) or "rego error")
    if len(output) == 0 or not output[0].expressions:
        return None
    if len(output) > 1 or len(output[0].expressions) > 1:
        raise RuntimeError("the decision query gave several results")
    return output[0].expressions[0]


def _error_text(node: Node) -> list[str]:
    """The messages inside a rego-cpp error tree (str() of an error output is just '<error>')."""
    try:
        text = rego_node_value(node._impl) if len(node) == 0 else ""
    except Exception:  # noqa: BLE001 - an unreadable node adds nothing
        text = ""
    parts = [text] if text else []
    for index in range(len(node)):
        parts += _error_text(node.at(index))
    return parts


def _reply(out: TextIO, message: dict) -> None:
    out.write(json.dumps(message, allow_nan=False) + "\n")
    out.flush()


if __name__ == "__main__":
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    # rego-cpp prints some errors to stdout: they go to stderr, never into a reply.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin, replies)
