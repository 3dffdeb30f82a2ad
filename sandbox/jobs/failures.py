"""How a job's own failure is told: the kind of exception and the line of the job's code where
it escaped, and nothing else (never its message, arguments or a traceback).

Why the kind and line are safe to show: everything a job computes on has been released
already. Its inputs are its own code, the answers `sql()` gives it (the query path's own
released answers: guarded, thresholded or noised, dominated sums withheld), the stable codes
of refused calls (what `/v1/queries` answers too), and its own builtins and vetted modules.
Raw rows, identifiers and engine text never enter the job's process. So which exception
escapes, and from which line, is a function of released values and the code, and tells the
developer nothing it could not compute from its released answers itself. The message and
arguments stay inside: host functions put their own values in them.
"""

from __future__ import annotations

import builtins
from types import TracebackType

from sandbox.jobs.gate import CODED_EXCEPTIONS, FILENAME, GIVEN_NAMES
from sandbox.jobs.modules import OFFERED


def reported_kinds() -> dict[str, type[BaseException]]:
    """The exception types a failure may be named by: those a job can name (its builtins and
    its modules' exceptions), recursion, and the enclave's own coded refusals."""
    offered = [getattr(builtins, name, None) for name in GIVEN_NAMES]
    offered += [value for names in OFFERED.values() for value in names.values()]
    offered += [RecursionError, *CODED_EXCEPTIONS]
    return {
        kind.__name__: kind
        for kind in offered
        if isinstance(kind, type) and issubclass(kind, BaseException)
    }


def failure(exc: BaseException) -> dict[str, str | int]:
    """The kind (the nearest reported type in its ancestry) and the job's own line."""
    kinds = set(reported_kinds().values())
    kind = next(k for k in type(exc).__mro__ if k in kinds or k is BaseException)
    told: dict[str, str | int] = {"kind": kind.__name__}
    line = _job_line(exc.__traceback__)
    if line is not None:
        told["line"] = line
    return told


def reported(message: dict, code: str) -> dict[str, str | int]:
    """A failure as a job process reported it, checked: a kind from the list and a line of
    the code, or nothing. The process runs untrusted code, so nothing else is taken."""
    told: dict[str, str | int] = {}
    kind, line = message.get("kind"), message.get("line")
    if isinstance(kind, str) and kind in reported_kinds():
        told["kind"] = kind
        lines = code.count("\n") + 1
        if type(line) is int and 1 <= line <= lines:
            told["line"] = line
    return told


def _job_line(trace: TracebackType | None) -> int | None:
    """The innermost line of the job's own code the exception passed through."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == FILENAME:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line
