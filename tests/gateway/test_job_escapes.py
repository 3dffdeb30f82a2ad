"""Ways out of the job language, tried over HTTP as a developer would: each job tries one
family and succeeds only if the attempt was stopped and told it nothing, so an escape (or a
leak through what a caught exception carries) shows as a failed job."""

from __future__ import annotations

import pytest

from tests.gateway.test_jobs import run

# Each attempt must raise; what the job then holds of the error must be empty.
ATTEMPTS = {
    "the formatter walk seen from outside": (
        "from collections import UserString\nUserString('{0.append.nope}').format([])"
    ),
    "a formatter walk on a plain string": "'{0.__class__.__mro__}'.format(1)",
    "format_map with a mapping": "'{a.real.imag}'.format_map({'a': 1})",
    "format taken from the class": "str.format('{0}', 1)",
    "an error's object": "try:\n    [].nope\nexcept AttributeError as e:\n    e.obj",
    "an error's arguments": "try:\n    {}[sql]\nexcept KeyError as e:\n    e.args",
    "a module's internals": "import statistics\nstatistics.sys",
    "a from-import of internals": "from fractions import math",
    "a module not offered": "import string",
    "a generator's state": "g = (x for x in [1])\ng.gi_running",
    "a bound method's owner": "import statistics\nstatistics.NormalDist().pdf.im_self",
    "decimal's context": "from decimal import getcontext",
    "a dict view's mapping": "{}.keys().mapping",
    "an item write into a module": "import math\nmath['pi'] = 3",
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_each_way_out_is_stopped_and_tells_the_job_nothing(demo, attempt: str) -> None:
    body = "\n".join("    " + line for line in attempt.splitlines())
    code = (
        "stopped = False\nheld = None\n"
        f"try:\n{body}\nexcept Exception as error:\n    stopped = True\n"
        "    held = [str(error), repr(error)]\n"
        "if not stopped:\n    raise ValueError('escaped')\n"
        "if held[0] != '' or not held[1].endswith('()'):\n    raise ValueError('leaked')\n"
    )
    job = run(demo, code)
    assert (job["status"], job["error"]) == ("succeeded", None), job


def test_the_control_job_fails_when_nothing_stops_it(demo) -> None:
    """The same harness around an attempt that works shows a failed job: it can fail."""
    job = run(demo, "stopped = False\ntry:\n    x = [1].count(1)\nexcept Exception:\n"
                    "    stopped = True\nif not stopped:\n    raise ValueError('escaped')\n")  # fmt: skip
    assert job["status"] == "failed"
