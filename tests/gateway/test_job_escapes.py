"""Ways out of the job language, tried over HTTP as a developer would: each job tries one
family and succeeds only if the attempt was stopped and told it nothing, so an escape (or a
leak through what a caught exception carries) shows as a failed job."""

from __future__ import annotations

import pytest

from tests.gateway.test_jobs import run, submit

# Each attempt must raise; what the job then holds of the error must be empty.
ATTEMPTS = {
    "a formatter walk on a plain string": "'{0.__class__.__mro__}'.format(1)",
    "format_map with a mapping": "'{a.real.imag}'.format_map({'a': 1})",
    "format taken from the class": "str.format('{0}', 1)",
    "an error's object": "try:\n    [].nope\nexcept AttributeError as e:\n    e.obj",
    "an error's arguments": "try:\n    {}[sql]\nexcept KeyError as e:\n    e.args",
    "a module's internals": "import statistics\nstatistics.sys",
    "a generator's state": "g = (x for x in [1])\ng.gi_running",
    "a bound method's owner": "import statistics\nstatistics.NormalDist().pdf.im_self",
    "a dict view's mapping": "{}.keys().mapping",
    "an item write into a module": "import math\nmath['pi'] = 3",
    "an address read from repr": "int(repr(int.from_bytes).split(' at ')[1].split('>')[0], 16)",
    "an address read from an f-string": "int(f'{sql}'.split(' at ')[1][:14], 16)",
    "an address read through %r": "int(('%r' % (print,)).split(' at ')[1][:14], 16)",
    "the islice that frees memory it uses": "import itertools\nitertools.islice",
    "an address read from a set's order": "list({sql, *range(40000)}).index(sql)",
    "an address read from a key view's order": (
        "list({publish: 1}.keys() | set(range(40000))).index(publish)"
    ),
    "an address read from an empty range's hash": "list({range(0), *range(40000)}).index(0)",
    "an address read from the order of NaNs": (
        "nans = [float('nan') for _ in range(64)]\n"
        "s = set(range(1000))\ns.update(nans)\n[nans.index(x) for x in s if x != x]"
    ),
}

# A red-team round's escape: a use-after-free in CPython 3.11's islice, re-entered from its
# own callback, steered by addresses read from repr() into a fake iterator that handed the
# job a host module's globals. Each of its two footholds is gone; the job must fail early.
ISLICE_ESCAPE = """
import itertools
def addr(text):
    return int(text.split(" at ")[1].split(">")[0], 16)
long_type = addr(repr(int.from_bytes))
target = addr(repr(simple_regression))
holder = []
n = [0]
def f(v):
    n.append(1)
    if len(n) < 20:
        for x in holder[0]:
            break
    return v
it = itertools.islice(map(f, range(30)), 2, 20, 3)
holder.append(it)
out = [v for v in it]
publish("pwn", ["k"], [[long_type], [target]])
"""


# Refused at submission by name and line: the import never runs (the importer would refuse it
# too; tests/sandbox/test_job_gate.py tries that wall on its own).
REFUSED_IMPORTS = {
    "the formatter walk seen from outside": (
        "from collections import UserString\nUserString('{0.append.nope}').format([])",
        "collections.UserString",
    ),
    "a from-import of internals": ("from fractions import math", "fractions.math"),
    "a module not offered": ("import string", "string"),
    "decimal's context": ("from decimal import getcontext", "decimal.getcontext"),
}


def _harnessed(attempt: str) -> str:
    """The attempt inside a job that succeeds only if it was stopped and told nothing."""
    body = "\n".join("    " + line for line in attempt.splitlines())
    return (
        "stopped = False\nheld = None\n"
        f"try:\n{body}\nexcept Exception as error:\n    stopped = True\n"
        "    held = [str(error), repr(error)]\n"
        "if not stopped:\n    raise ValueError('escaped')\n"
        "if held[0] != '' or not held[1].endswith('()'):\n    raise ValueError('leaked')\n"
    )


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_each_way_out_is_stopped_and_tells_the_job_nothing(demo, attempt: str) -> None:
    job = run(demo, _harnessed(attempt))
    assert (job["status"], job["error"]) == ("succeeded", None), job


@pytest.mark.parametrize(("attempt", "name"), REFUSED_IMPORTS.values(), ids=REFUSED_IMPORTS.keys())
def test_an_import_way_out_is_refused_at_submission(demo, attempt: str, name: str) -> None:
    refused = submit(demo, _harnessed(attempt))
    assert refused.status_code == 422, refused.json()
    violations = refused.json()["error"]["violations"]
    assert {"rule": "import_not_allowed", "name": name, "line": 4} in violations


def test_the_control_job_fails_when_nothing_stops_it(demo) -> None:
    """The same harness around an attempt that works shows a failed job: it can fail."""
    job = run(demo, "stopped = False\ntry:\n    x = [1].count(1)\nexcept Exception:\n"
                    "    stopped = True\nif not stopped:\n    raise ValueError('escaped')\n")  # fmt: skip
    assert job["status"] == "failed"


def test_the_islice_escape_fails_at_its_first_foothold(demo) -> None:
    job = run(demo, ISLICE_ESCAPE)
    assert (job["status"], job["outputs"]) == ("failed", None), job
    # Without the address read, the islice it needs is refused as well.
    job = run(demo, ISLICE_ESCAPE.replace("addr(repr(int.from_bytes))", "0").replace(
        "addr(repr(simple_regression))", "0"))  # fmt: skip
    assert (job["status"], job["outputs"]) == ("failed", None), job


def test_a_private_keyword_argument_is_refused_at_submission(demo) -> None:
    refused = submit(demo, "from fractions import Fraction\nx = Fraction(4, -2, _normalize=False)")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "JOB_REJECTED"


# The second round's use-after-free: a C cycle/chain/pairwise dropping its child while the
# child's callback re-enters it. With generators the re-entry is refused, and nothing crashes.
REENTRY = """
import itertools
st = {"c": None}
def g(v):
    if v == 1:
        for y in st["c"]:
            break
        st["junk"] = [(i, 7) for i in range(300)]
    return v
def h(a, b):
    return a
st["c"] = itertools.PARENT(map(h, map(g, range(2)), range(100)))
out = []
for x in st["c"]:
    out.append(x)
    if len(out) > 5:
        break
"""


@pytest.mark.parametrize("parent", ["chain", "pairwise", "cycle"])
def test_reentering_an_iterator_from_its_callback_fails_cleanly(demo, parent: str) -> None:
    job = run(demo, REENTRY.replace("PARENT", parent))
    # A crash would read JOB_OUT_OF_MEMORY (SIGSEGV); a refusal is an ordinary failure.
    assert (job["status"], job["error"]["code"]) == ("failed", "JOB_FAILED"), job


# Recursion inside C, which Python's recursion limit does not see: the interpreter overflows
# its stack. It cannot be steered (the guard page stops it), and the job's process dies alone.
C_STACK_OVERFLOWS = {
    "nested maps": "m = [1]\nfor _ in range(400000):\n    m = map(abs, m)\nlist(m)",
    "a nested tuple hashed": "t = ()\nfor _ in range(400000):\n    t = (t,)\nd = {}\nd[t] = 1",
}


@pytest.mark.parametrize("code", C_STACK_OVERFLOWS.values(), ids=C_STACK_OVERFLOWS.keys())
def test_a_job_that_overflows_the_c_stack_dies_alone(demo, code: str) -> None:
    crashed = run(demo, code)
    assert crashed["status"] == "failed" and crashed["error"]["code"] == "JOB_OUT_OF_MEMORY"
    assert run(demo, "x = [1] * 3")["status"] == "succeeded"
