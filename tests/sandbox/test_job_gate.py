"""The job compile gate: honest analysis code runs; every known way out of RestrictedPython is
refused at compile time or fails at run time, with nothing of the host reachable."""

from __future__ import annotations

import pytest

from sandbox.errors import JobRejected
from sandbox.jobs.attributes import AttributeRefused
from sandbox.jobs.child import QueryFailed
from sandbox.jobs.gate import compile_job, job_globals
from sandbox.jobs.modules import ImportRefused
from sandbox.jobs.sets import SetRefused


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


# Refused at submission by name and line; the importer and the builtins refuse them again.
REFUSED_BY_NAME = {
    "import os": ("import os", "import_not_allowed", "os"),
    "import sys": ("x = 1\nimport sys", "import_not_allowed", "sys"),
    "a dotted import": ("import os.path", "import_not_allowed", "os.path"),
    "relative import": ("from . import x", "import_not_allowed", "."),
    "from-import of a module not offered": ("from os import path", "import_not_allowed", "os"),
    "from-import of internals": ("from statistics import sys", "import_not_allowed",
                                 "statistics.sys"),
    "from-import of a class not offered": ("from collections import UserString",
                                           "import_not_allowed", "collections.UserString"),
    "from-import of a context": ("from decimal import getcontext", "import_not_allowed",
                                 "decimal.getcontext"),
    "open": ("open('/etc/passwd')", "name_not_allowed", "open"),
    "getattr": ("getattr(sql, 'x')", "name_not_allowed", "getattr"),
    "type": ("type(1)", "name_not_allowed", "type"),
    "globals": ("globals()", "name_not_allowed", "globals"),
    "vars": ("vars()", "name_not_allowed", "vars"),
    "dir": ("dir()", "name_not_allowed", "dir"),
    "compile": ("compile('1', 'x', 'eval')", "name_not_allowed", "compile"),
    "setattr": ("setattr(sql, 'x', 1)", "name_not_allowed", "setattr"),
    "input": ("input()", "name_not_allowed", "input"),
    "__import__": ("__import__('os')", "name_not_allowed", "__import__"),
    "a dunder attribute": ("().__class__", "attribute_not_allowed", "__class__"),
    "a frame attribute": ("g = (x for x in [1])\ng.gi_frame", "attribute_not_allowed", "gi_frame"),
}  # fmt: skip


@pytest.mark.parametrize(("code", "rule", "name"), REFUSED_BY_NAME.values(),
                         ids=REFUSED_BY_NAME.keys())  # fmt: skip
def test_imports_names_and_attributes_are_refused_by_name_and_line(
    code: str, rule: str, name: str
) -> None:
    with pytest.raises(JobRejected) as refused:
        compile_job(code)
    line = len(code.splitlines())
    assert {"rule": rule, "name": name, "line": line} in [
        v.as_dict() for v in refused.value.violations
    ]
    assert f"line {line}" in refused.value.message and f'"{name}"' in refused.value.message


def test_a_name_the_job_binds_itself_is_not_a_builtin() -> None:
    assert run("input = [3]\nvalue = input[0]")["value"] == 3


def test_past_the_checks_the_importer_and_the_builtins_still_refuse() -> None:
    """The checks explain; the walls behind them hold on their own."""
    guarded_import = job_globals({})["__builtins__"]["__import__"]
    for name, fromlist, level in (("os", (), 0), ("statistics", ("sys",), 0), ("x", (), 1),
                                  ("collections", ("UserString",), 0)):  # fmt: skip
        with pytest.raises(ImportRefused):
            guarded_import(name, None, None, fromlist, level)
    given = job_globals({})["__builtins__"]
    assert not {"open", "getattr", "type", "globals", "vars", "dir", "compile", "setattr",
                "input", "eval", "exec"} & set(given)  # fmt: skip


FAIL_AT_RUN = {
    "str.format (CVE-2023-41039)": ("'{0}'.format(1)", AttributeRefused),
    "str.format_map": ("'{x}'.format_map({'x': 1})", AttributeRefused),
    "format through a bound method held": ("f = 'a'.join\nf.format", AttributeRefused),
    "str.format from the class": ("str.format('{0}', 1)", AttributeRefused),
    "module internals": ("import statistics\nstatistics.sys", AttributeRefused),
    "module's math import": ("import fractions\nfractions.math", AttributeRefused),
    "generator state": ("g = (x for x in [1])\ng.gi_running", AttributeRefused),
    "generator send": ("g = (x for x in [1])\ng.send", AttributeRefused),
    "function code": ("def f(): pass\nf.func_code", AttributeRefused),
    "bound method's object": (
        "import statistics\nstatistics.NormalDist().pdf.im_self",
        AttributeRefused,
    ),
    "a dict view's mapping": ("{}.keys().mapping", AttributeRefused),
    "an exception's args": ("try:\n    1/0\nexcept Exception as e:\n    e.args", AttributeRefused),
    "an AttributeError's obj": (
        "try:\n    [].nope\nexcept AttributeError as e:\n    e.obj",
        AttributeRefused,
    ),
    "a class's methods": ("int.to_bytes", AttributeRefused),
    "a deque's internals": (
        "from collections import deque\ndeque().maxlen.real.imag.bit_length.self",
        AttributeRefused,
    ),
    "writing to a number": ("x = 1\nx.real = 2", TypeError),
    "writing an item of a proxy": ("import math\nmath['pi'] = 3", TypeError),
    "classes": ("class A:\n    pass", NameError),
    "star-args have no hook": ("max(*[1, 2])", NameError),
    "writing to a module proxy": ("import math\nmath.pi = 3", TypeError),
}


@pytest.mark.parametrize(
    ("code", "error"), FAIL_AT_RUN.values(), ids=FAIL_AT_RUN.keys()
)  # fmt: skip
def test_escapes_fail_at_run_time(code: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        run(code, sql=lambda text: {})


def test_modules_offer_vetted_names_only() -> None:
    scope = run(
        "import statistics\nfrom decimal import Decimal, ROUND_HALF_UP\nimport math\n"
        "mean = statistics.mean([1, 2, 3])\n"
        "rounded = Decimal('2.345').quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)\n"
        "fit = statistics.linear_regression([1, 2, 3], [2, 4, 6])\n"
        "slope = fit.slope\nroot = math.sqrt(16)\nkind = repr(math)"
    )
    assert scope["mean"] == 2 and str(scope["rounded"]) == "2.35"
    assert scope["slope"] == 2 and scope["root"] == 4
    assert scope["kind"] == "<object>"  # no path, no address, no module object


def test_the_user_string_escape_is_closed() -> None:
    """The escape seen from outside: a formatter walked a path to an AttributeError carrying
    the object it stopped on. Neither the formatter nor the object is reachable now."""
    escape = """
found = []
try:
    from collections import UserString
    found.append(UserString("{0.append.nope}").format([]))
except Exception as e:
    found.append(str(e))
"""
    with pytest.raises(JobRejected) as refused:
        compile_job(escape)
    assert refused.value.violations[0].name == "collections.UserString"
    variant = """
found = []
for text in ("{0.append.nope}", "{0[0].real.nope}"):
    try:
        found.append(text.format([1]))
    except Exception as e:
        found.append(str(e))
"""
    assert run(variant)["found"] == ["", ""]


CAUGHT = {
    "attribute error of a host object": "[].nope",
    "key error carrying a host object": "{}[sql]",
    "index error": "[][5]",
    "type error naming a host function": "sql(1, 2, 3)",
    "value error from a module": "import statistics\nstatistics.mean([])",
    "zero division": "1 / 0",
    "unpacking": "a, b = [sql]",
    "stop iteration": "iter = None\nnext_value = [x for x in []][0]",
}


@pytest.mark.parametrize("raising", CAUGHT.values(), ids=CAUGHT.keys())
def test_a_caught_exception_holds_its_type_and_nothing_else(raising: str) -> None:
    body = "\n".join("    " + line for line in raising.splitlines())
    scope = run(
        f"try:\n{body}\nexcept Exception as e:\n    caught = e\n    text = str(e)\n"
        "    shown = repr(e)\n    same = isinstance(e, Exception)",
        sql=lambda text: {},
    )
    caught = scope["caught"]
    assert caught.args == () and caught.__traceback__ is None
    assert caught.__context__ is None and caught.__cause__ is None
    assert getattr(caught, "obj", None) is None and getattr(caught, "name", None) is None
    assert scope["text"] == "" and scope["shown"] == f"{type(caught).__name__}()"
    assert scope["same"] is True


def test_a_refused_query_still_tells_the_job_its_code() -> None:
    def refuse(text: str) -> dict:
        raise QueryFailed("QUERY_REJECTED")

    scope = run("try:\n    sql('x')\nexcept Exception as e:\n    code = str(e)", sql=refuse)
    assert scope["code"] == "QUERY_REJECTED"


def test_a_nested_handler_and_a_reraise_stay_blank() -> None:
    scope = run(
        "try:\n    try:\n        [].nope\n    except AttributeError as inner:\n"
        "        raise ValueError(inner)\nexcept ValueError as outer:\n    held = outer\n",
    )
    assert scope["held"].args == () and scope["held"].__cause__ is None


def test_each_job_gets_fresh_globals() -> None:
    first = run("import math\nseen = math")
    second = run("import math\nseen = math")
    assert first["seen"] is not second["seen"]
    assert first["__builtins__"] is not second["__builtins__"]


def test_attributes_of_builtins_cannot_be_written() -> None:
    with pytest.raises(TypeError):
        run("sorted.x = 1")


HOST_OBJECTS = {
    "the enclave's function": "sql",
    "a builtin method": "int.from_bytes",
    "a bound method of a string": "'ab'.join",
    "print": "print",
    "a module proxy": "statistics",
    "a generator": "(x for x in [1])",
    "a job's own function": "job_function",
    "a list holding a function": "[1, sql]",
    "a dict holding a method": "{'k': 'a'.join}",
    "a defaultdict with a function for its default": "defaultdict(job_function)",
    "a caught host exception holding an object": "ValueError(sql)",
}
TEXT_MAKERS = {
    "repr": "repr(value)",
    "str": "str(value)",
    "an f-string field": "f'{value}'",
    "an f-string !r": "f'{value!r}'",
    "an f-string with a spec": "f'{value:>40}'",
    "% with one value": "'%s' % value",
    "%r in a tuple": "'%r and %s' % (value, 1)",
    "% with a mapping": "'%(v)r' % {'v': value}",
    "%= in place": "text = '%s'\ntext %= (value,)",
}


@pytest.mark.parametrize("maker", TEXT_MAKERS.values(), ids=TEXT_MAKERS.keys())
@pytest.mark.parametrize("held", HOST_OBJECTS.values(), ids=HOST_OBJECTS.keys())
def test_no_text_a_job_makes_holds_an_address_or_a_host_name(held: str, maker: str) -> None:
    """Addresses turn a memory bug into an escape (a red-team round read them from repr)."""
    setup = (
        "import statistics\nfrom collections import defaultdict\n"
        "def job_function():\n    return 1\n"
        f"value = {held}\n"
    )
    assignment = maker if "\n" in maker else f"text = {maker}"
    text = run(setup + assignment, sql=lambda text: {})["text"]
    assert "0x" not in text and " at " not in text and "sandbox" not in text, text


def test_plain_values_still_print_as_python_writes_them() -> None:
    scope = run(
        "from decimal import Decimal\nfrom collections import Counter\n"
        "a = repr([1, 'a', 2.5, None, (True,), {'k': {1, 2}}])\nb = str(Decimal('1.50'))\n"
        "c = f'{3.14159:.2f} {7:>3} {\"x\"!r}'\nd = '%d items, %s' % (5, 'ok')\n"
        "e = '%(n)05.1f' % {'n': 2.25}\nf = str(Counter('aab'))\ng = isinstance('x', str)\n"
        "h = isinstance(1, (str, int))\ni = str()\nj = [str(n) for n in range(3)]\n"
        "k = 10 % 3\nl = repr(ValueError('bad', 2))"
    )
    assert scope["a"] == "[1, 'a', 2.5, None, (True,), {'k': {1, 2}}]"
    assert (scope["b"], scope["c"]) == ("1.50", "3.14   7 'x'")
    assert (scope["d"], scope["e"]) == ("5 items, ok", "002.2")
    assert scope["f"] == "Counter({'a': 2, 'b': 1})"
    assert scope["g"] is True and scope["h"] is True and scope["i"] == ""
    assert scope["j"] == ["0", "1", "2"] and scope["k"] == 1
    assert scope["l"] == "ValueError('bad', 2)"


def test_islice_is_not_offered() -> None:
    """Re-entered from its own callback, CPython 3.11's islice frees memory it still uses."""
    with pytest.raises(AttributeRefused):
        run("import itertools\nitertools.islice")
    with pytest.raises(JobRejected):
        compile_job("from itertools import islice")


def test_private_keyword_arguments_are_refused_at_compile() -> None:
    with pytest.raises(JobRejected):
        compile_job("from fractions import Fraction\nFraction(4, -2, _normalize=False)")


def test_counters_and_default_dicts_take_item_assignment() -> None:
    scope = run(
        "from collections import Counter, defaultdict\nc = Counter()\nc['a'] = 2\n"
        "d = defaultdict(list)\nd['k'].append(1)\nd['j'] = [2]"
    )
    assert scope["c"]["a"] == 2 and dict(scope["d"]) == {"k": [1], "j": [2]}


ROUND_TWO = {
    "bytes %a": "text = ''.join([chr(c) for c in b'%a' % sql])",
    "bytes %r in a tuple": "text = ''.join([chr(c) for c in b'%r' % (int.from_bytes,)])",
    "a mapping's key": "text = '%s' % {sql: 1}",
    "a mapping's key in place": "text = '%r'\ntext %= {int.from_bytes: 2}",
    "an OSError's file name": "text = str(OSError(2, 'x', sql))",
    "an OSError's second file name": 'text = f\'{OSError(2, "x", "a", 0, sql)}\'',
}


@pytest.mark.parametrize("code", ROUND_TWO.values(), ids=ROUND_TWO.keys())
def test_the_second_round_of_address_leaks_is_closed(code: str) -> None:
    text = run(code, sql=lambda text: {})["text"]
    assert "0x" not in text and " at " not in text and "lambda" not in text, text


def test_itertools_are_generators_a_callback_cannot_reenter() -> None:
    """Re-entered from a callback, CPython's C chain/cycle/pairwise freed memory still in use."""
    scope = run(
        "import itertools\nstate = {}\n"
        "def reenter(v):\n    for y in state['c']:\n        break\n    return v\n"
        "state['c'] = itertools.chain(map(reenter, range(2)))\nout = 'none'\n"
        "try:\n    out = list(state['c'])\nexcept ValueError:\n    out = 'refused'\n"
        "pairs = list(itertools.pairwise([1, 2, 3]))\n"
        "groups = [(k, len(g)) for k, g in itertools.groupby('aab')]"
    )
    assert scope["out"] == "refused"
    assert scope["pairs"] == [(1, 2), (2, 3)] and scope["groups"] == [("a", 2), ("b", 1)]


# A set iterates in its elements' hash order, and a function, a NaN or (in 3.11) None hashes by
# its address: a red-team round read bits 4-21 of `sql`'s address from where it sat in a set.
ADDRESS_HASHED_INTO_A_SET = {
    "a literal": "s = {sql, *range(9)}",
    "a comprehension": "s = {f for f in [sql, publish]}",
    "set()": "s = set([sql])",
    "frozenset()": "s = frozenset(x for x in [publish])",
    "add": "s = set()\ns.add(sql)",
    "update": "s = {1}\ns.update(range(3), [publish])",
    "symmetric_difference_update": "s = {1}\ns.symmetric_difference_update([sql])",
    "union": "s = {1}.union([sql])",
    "a frozenset's union": "s = frozenset([1]).union({2}, [sql])",
    "symmetric_difference": "s = {1}.symmetric_difference([sql])",
    "|": "s = {1} | {2} | set(range(3)) | {sql: 1}.keys()",
    "a key view's |": "s = {}.keys() | [sql]",
    "a key view's -": "s = {sql: 1}.keys() - []",
    "an item view's ^": "s = {1: sql}.items() ^ set()",
    "|=": "s = {1}\ns |= {publish: 2}.keys()",
    "|= on a view": "s = {sql: 1}.keys()\ns |= set()",
    "^= with a set": "s = {1}\ns ^= {2}.union([3])\ns ^= {sql: 0}.keys()",
    "a tuple holding a function": "s = {(1, (2, sql))}",
    "a frozenset holding a function": "s = {1: frozenset()}.keys() | {(1, sql)}",
    "NaN": "s = {float('nan'), float('nan')}",
    "math.nan": "import math\ns = {math.nan}",
    "a NaN complex": "s = {complex(1, float('nan'))}",
    "a NaN decimal": "from decimal import Decimal\ns = {Decimal('NaN')}",
    "None, in Python 3.11": "s = {None, 1}",
    "an empty range (hashed with None)": "s = {range(0), *range(9)}",
    "a one-long range (hashed with None)": "s = {1: 2}.keys() | {(range(5, 6),)}",
    "a set as a default factory": (
        "from collections import defaultdict\nd = defaultdict(set)\nd['k'].add(sql)"
    ),
}


@pytest.mark.parametrize("code", ADDRESS_HASHED_INTO_A_SET.values(), ids=ADDRESS_HASHED_INTO_A_SET)
def test_no_set_holds_a_value_hashed_by_its_address(code: str) -> None:
    with pytest.raises(SetRefused):
        run(code, sql=lambda text: {}, publish=lambda *table: None)


def test_a_caught_set_refusal_leaves_the_set_as_it_was() -> None:
    scope = run(
        "s = {1, 2}\nkinds = []\n"
        "for attempt in (lambda: s.add(sql), lambda: s.update([3], [sql]),\n"
        "                lambda: s.symmetric_difference_update([sql])):\n"
        "    try:\n        attempt()\n    except TypeError as error:\n"
        "        kinds.append(repr(error))\n"
        "try:\n    s |= {sql: 1}.keys()\nexcept TypeError:\n    kinds.append('|=')",
        sql=lambda text: {},
    )
    assert scope["s"] == {1, 2}
    assert scope["kinds"] == ["SetRefused()"] * 3 + ["|="]


def test_sets_of_plain_values_work_as_in_python() -> None:
    scope = run(
        "from collections import defaultdict\nfrom decimal import Decimal\n"
        "a = {1, 2} | {3}\nb = set(['x', (1, 2.5), b'z', Decimal('1.5'), True])\n"
        "b.add(frozenset([4]))\nb.add(range(2, 9))\nb.update([5], (6,))\nb -= {True}\nb ^= {6, 7}\nb &= b | {8}\n"
        "c = frozenset('abc') - {'a'}\nd = {n % 3 for n in range(9)}\n"
        "e = {'k': 1}.keys() | {'j'}\nf = {'k': 1}.items() & {('k', 1)}\n"
        "g = defaultdict(set)\ng['k'].add(1)\n"
        "h = [isinstance(a, set), isinstance(c, frozenset), isinstance([], set)]\n"
        "n = 12\nn -= 2\nn |= 1\nn &= 7\nn ^= 8\nm = (12 - 2) | 1 & 7 ^ 8",
    )
    assert scope["a"] == {1, 2, 3} and scope["c"] == {"b", "c"} and scope["d"] == {0, 1, 2}
    assert scope["b"] == {
        "x", (1, 2.5), b"z", scope["Decimal"]("1.5"), frozenset([4]), range(2, 9), 5, 7
    }  # fmt: skip
    assert scope["e"] == {"k", "j"} and scope["f"] == {("k", 1)} and scope["g"]["k"] == {1}
    assert scope["h"] == [True, True, False] and scope["n"] == 11 and scope["m"] == 11
