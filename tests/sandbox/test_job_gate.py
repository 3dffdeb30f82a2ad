"""The job compile gate: honest analysis code runs; every known way out of RestrictedPython is
refused at compile time or fails at run time, with nothing of the host reachable."""

from __future__ import annotations

import pytest

from sandbox.errors import JobRejected
from sandbox.jobs.gate import compile_job, job_globals


def run(code: str, **functions) -> dict:
    scope = job_globals(functions)
    exec(compile_job(code), scope)  # noqa: S102 - the gate under test, not untrusted input
    return scope


def test_honest_analysis_runs() -> None:
    published = []
    scope = run(
        """
import math
import statistics
from fractions import Fraction
from collections import Counter
from itertools import combinations
rows = sql("SELECT ...")["rows"]
values = [row[1] for row in rows]
total = 0
for value in values:
    total += value
first, second = values[:2]
mean = statistics.mean(values)
spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
ratio = Fraction(1, 3) + Fraction(1, 6)
counts = Counter(row[0] for row in rows)
pairs = len(list(combinations(values, 2)))
by_key = {row[0]: row[1] for row in rows}
print("goes nowhere")
publish("summary", ["n", "mean"], [[len(values), round(mean, 2)]])
""",
        sql=lambda text: {"columns": ["k", "v"], "rows": [["a", 2], ["b", 4], ["a", 6]]},
        publish=lambda name, columns, rows: published.append((name, columns, rows)),
    )
    assert scope["total"] == 12 and (scope["first"], scope["second"]) == (2, 4)
    assert scope["ratio"] == scope["Fraction"](1, 2)
    assert scope["counts"]["a"] == 2 and scope["pairs"] == 3
    assert published == [("summary", ["n", "mean"], [[3, 4]])]


REFUSED_AT_COMPILE = {
    "dunder attribute": "().__class__.__bases__[0].__subclasses__()",
    "dunder name": "__import__('os')",
    "exec": "exec('import os')",
    "eval": "eval('1')",
    "function globals": "def f(): pass\nf.__globals__",
    "f-string dunder": "f'{sql.__globals__}'",
    "except star (CVE-2025-22153)": "try:\n    pass\nexcept* ValueError:\n    pass",
    "frame via generator (CVE-2023-37271)": "g = (x for x in [1])\ng.gi_frame.f_back",
    "traceback frame": "try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame",
    "breakpoint": "breakpoint()",
    "syntax error": "def (:",
    "empty": "   ",
}


@pytest.mark.parametrize("code", REFUSED_AT_COMPILE.values(), ids=REFUSED_AT_COMPILE.keys())
def test_escapes_are_refused_at_compile(code: str) -> None:
    with pytest.raises(JobRejected) as refused:
        compile_job(code)
    assert refused.value.code == "JOB_REJECTED"
    assert refused.value.violations


FAIL_AT_RUN = {
    "import os": ("import os", ImportError),
    "import sys": ("import sys", ImportError),
    "relative import": ("from . import x", ImportError),
    "from-import of internals": ("from statistics import sys", ImportError),
    "str.format (CVE-2023-41039)": ("'{0}'.format(1)", NotImplementedError),
    "open": ("open('/etc/passwd')", NameError),
    "getattr": ("getattr(sql, 'x')", NameError),
    "type": ("type(1)", NameError),
    "globals": ("globals()", NameError),
    "vars": ("vars()", NameError),
    "dir": ("dir()", NameError),
    "compile": ("compile('1', 'x', 'eval')", NameError),
    "classes": ("class A:\n    pass", NameError),
    "star-args have no hook": ("max(*[1, 2])", NameError),
    "writing to a module proxy": ("import math\nmath.pi = 3", TypeError),
    "setattr": ("setattr(sql, 'x', 1)", NameError),
    "input": ("input()", NameError),
}


@pytest.mark.parametrize(
    ("code", "error"), FAIL_AT_RUN.values(), ids=FAIL_AT_RUN.keys()
)  # fmt: skip
def test_escapes_fail_at_run_time(code: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        run(code, sql=lambda text: {})


def test_modules_show_only_their_public_api() -> None:
    # A missing attribute reads as None (safer_getattr's default): nothing behind it is reached.
    scope = run(
        "import statistics\nimport collections\nimport decimal\n"
        "inner = statistics.sys\nabc = collections.abc\nlocal = decimal.sys\n"
        "mean = statistics.mean([1, 2, 3])"
    )
    assert (scope["inner"], scope["abc"], scope["local"]) == (None, None, None)
    assert scope["mean"] == 2


def test_each_job_gets_fresh_globals() -> None:
    first = run("import math\nseen = math")
    second = run("import math\nseen = math")
    assert first["seen"] is not second["seen"]
    assert first["__builtins__"] is not second["__builtins__"]


def test_attributes_of_builtins_cannot_be_written() -> None:
    with pytest.raises(TypeError):
        run("sorted.x = 1")
