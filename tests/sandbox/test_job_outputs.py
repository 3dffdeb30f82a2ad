"""The disclosure gate on published tables: ACRO/OpenSAFELY defaults, enclave-counted units,
labels only from released values, and a refusal for anything that is not a typed table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.jobs.gate import string_literals
from sandbox.jobs.outputs import (
    GateBudget,
    OutputRejected,
    OutputRules,
    _label_key,
    _labels,
    _Released,
    _Work,
    check_outputs,
)
from sandbox.jobs.runner import Answer, Published

ANSWER = Answer(
    ["region", "visits", "mean_cost"],
    [["north", 40, 120.5], ["south", 23, 98.25], ["west", 12, 310.0]],
    [40, 23, 12],
    [False, False, False],
)
RULES = OutputRules()


def gate(columns, rows, answers=(ANSWER,), rules=RULES, name="t"):
    return check_outputs([Published(name, columns, rows)], list(answers), rules)


def table(columns, rows, **kwargs):
    return gate(columns, rows, **kwargs).tables["t"]


def test_counts_are_rounded_to_five_and_small_ones_suppressed() -> None:
    checked = table(["region", "n"], [["north", 42], ["south", 23], ["west", 12]])
    assert checked.kinds == ["label", "count"]
    assert checked.rows == [["north", 40], ["south", 25], ["west", 10]]
    small = table(["region", "n"], [["north", 42], ["south", 23], ["west", 3]])
    # 3 is suppressed, and alone it is under the threshold: the next smallest goes with it.
    assert small.rows == [["north", 40], ["south", None], ["west", None]]
    assert small.suppressed_cells == 2


def test_zero_is_suppressed_like_any_small_count() -> None:
    checked = table(["region", "n"], [["north", 0], ["south", 50], ["west", 60]])
    assert checked.rows[0] == ["north", None]


def test_statistics_keep_four_significant_figures() -> None:
    checked = table(
        [["region", "label"], ["mean_cost", "mean"]], [["north", 120.56789], ["south", 98.123456]]
    )
    assert checked.rows == [["north", 120.6], ["south", 98.12]]


def test_rows_on_too_few_units_lose_their_values() -> None:
    """west stands on 12 units; a policy asking for 20 suppresses it, labels stay."""
    rules = RULES.tightened(min_units=20, max_rows=10_000)
    checked = table(
        [["region", "label"], ["mean_cost", "mean"]],
        [["north", 120.5], ["west", 310.0]],
        rules=rules,
    )
    assert checked.rows == [["north", 120.5], ["west", None]]


def test_a_table_without_answers_behind_it_releases_no_number() -> None:
    checked = table(["n"], [[500]], answers=())
    assert checked.rows == [[None]]


# "south" failed the dominance rules in the enclave: its sum came to the job withheld.
DOMINATED = Answer(
    ["region", "visits", "total_cost"],
    [["north", 40, 4820.0], ["south", 23, None], ["west", 12, 3720.0]],
    [40, 23, 12],
    [False, True, False],
)
TOTAL = Answer(["visits", "total_cost"], [[75, 30000.0]], [75], [False])


def test_statistics_leading_back_to_a_dominated_row_are_suppressed() -> None:
    """A job that rebuilt south's sum (the total less the others) cannot publish it as south,
    nor as a statistic, nor through a total that would give it back; counts stay."""
    columns = [["region", "label"], ["n", "count"], ["cost", "sum"], ["mean", "statistic"]]
    rows = [["north", 40, 4820.0, 120.5], ["south", 25, 21460.0, 933.0], ["west", 12, 3720.0, 310]]
    checked = table(columns, rows, answers=(DOMINATED, TOTAL))
    assert checked.rows == [
        ["north", 40, 4820.0, 120.5],
        ["south", 25, None, None],
        ["west", 10, 3720.0, 310],
    ]
    assert checked.suppressed_cells == 2
    assert any("dominance" in note for note in checked.notes)
    assert not any("fewer than" in note for note in checked.notes)
    total = table([["cost", "sum"]], [[30000.0]], answers=(DOMINATED, TOTAL))
    assert total.rows == [[None]]
    assert table([["cost", "sum"]], [[30000.0]], answers=(TOTAL,)).rows == [[30000.0]]


def test_min_and_max_are_redacted() -> None:
    checked = table([["region", "label"], ["top", "max"]], [["north", 9000.0]])
    assert checked.rows == [["north", None]]
    assert any("never released" in note for note in checked.notes)


def test_negative_sums_go_to_review() -> None:
    checked = gate([["region", "label"], ["net", "sum"]], [["north", -10.0], ["south", 5.0]])
    assert checked.review == ["negative_magnitude"]


@pytest.mark.parametrize(
    ("columns", "rows", "rule"),
    [
        (["region", "n"], [["atlantis", 50]], "label_not_released"),
        (["region", "n"], [["North", 50]], "label_not_released"),
        (["patient_id"], [[1]], "column_forbidden"),
        (["veil_units"], [[1]], "column_forbidden"),
        (["n"], [[{"a": 1}]], "cell_type"),
        (["n"], [[float("nan")]], "cell_type"),
        (["n"], [[10**400]], "cell_type"),
        (["n"], [[-(2**53) - 1]], "cell_type"),
        (["n"], [["x" * 201]], "cell_type"),
        (["a", "a"], [[1, 2]], "column_name"),
        (["Bad Name"], [[1]], "column_name"),
        ([["n", "histogram"]], [[1]], "column_kind"),
        (["n"], [[1, 2]], "row_shape"),
        ([["n", "count"]], [[1.5]], "count_not_whole"),
        ([["n", "count"]], [[-20]], "count_not_whole"),
        ([["m", "mean"]], [["north"]], "statistic_not_number"),
        ([], [], "columns"),
    ],
)
def test_what_is_not_a_typed_table_is_refused(columns, rows, rule) -> None:
    rules = OutputRules(forbidden_names=frozenset({"patient_id"}))
    with pytest.raises(OutputRejected) as refused:
        gate(columns, rows, rules=rules, name="visits")
    # The rule and nothing else: no column, no table name, no value.
    assert [v.as_dict() for v in refused.value.violations] == [{"rule": rule}]
    assert refused.value.message == "a published table cannot be released"


def test_row_and_name_caps() -> None:
    with pytest.raises(OutputRejected):
        gate(["n"], [[1]] * 5001)
    with pytest.raises(OutputRejected):
        gate(["n"], [[1]], name="Bad-Name")


def test_labels_are_typed_so_a_number_cannot_pass_for_text() -> None:
    with pytest.raises(OutputRejected):
        gate([["region", "label"], "n"], [["40", 50]])


def test_names_must_be_written_in_the_code_so_no_value_is_spelled_into_one() -> None:
    code = 'n = 42\npublish("visits", [["region", "label"], "n_" + str(n)], [])\nx = f"t_{n}"'
    rules = OutputRules(literal_names=string_literals(code))
    assert {"visits", "region", "label", "n_", "t_"} <= rules.literal_names
    assert gate([["region", "label"]], [], rules=rules, name="visits").tables["visits"].rows == []
    for columns, name in (([["region", "label"], "n_42"], "visits"), (["n"], "t_42")):
        with pytest.raises(OutputRejected) as refused:
            gate(columns, [], rules=rules, name=name)
        assert refused.value.violations[0].column is None
        assert "42" not in refused.value.message


def refusal(tables: list[Published], answers=(ANSWER,)) -> tuple:
    """Everything a refusal carries, as the job's developer would see it."""
    with pytest.raises(OutputRejected) as refused:
        check_outputs(tables, list(answers), RULES)
    error = refused.value
    return type(error), error.code, error.message, [v.as_dict() for v in error.violations]


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("count", float("inf")),
        ("count", "x" * 201),
        ("count", {"a": 1}),
        ("count", -20),
        ("count", 1.5),
        ("mean", "north"),
        ("label", "atlantis"),
    ],
)
def test_a_job_choosing_which_name_fails_by_a_value_sees_the_same_refusal(kind, bad) -> None:
    """A job puts the bad cell under one of two literal names, or in one of two tables,
    according to a bit it holds: the refusal is the same either way, so it spells nothing."""
    good = {"count": 50, "mean": 1.5, "label": "north"}[kind]
    columns = [["region", "label"], ["a", kind], ["b", kind]]

    def table(name: str, bit: int) -> Published:
        row = ["north", good, good]
        row[1 + bit] = bad
        return Published(name, columns, [row])

    fine = Published("other", columns, [["north", good, good]])
    assert refusal([table("t", 0)]) == refusal([table("t", 1)])
    assert refusal([table("first", 0), fine]) == refusal([fine, table("second", 0)])


def test_the_gate_refuses_rather_than_outspend_its_budget() -> None:
    """Every pair of 60 x-labels and 60 y-labels, each pair an answer row: each pair a table
    looks up walks a label's 60 rows, so 3,600 lookups cost far more than the cells."""
    pairs = [[f"x{i}", f"y{j}", 40] for i in range(60) for j in range(60)]
    answer = Answer(["x", "y", "n"], pairs, [40] * len(pairs), [False] * len(pairs))
    published = [Published("t", [["x", "label"], ["y", "label"], ["n", "count"]], pairs)]
    cells = len(pairs) * 4 + len(pairs) * 3
    with pytest.raises(OutputRejected) as refused:
        check_outputs(published, [answer], RULES, GateBudget(2 * cells, seconds=60))
    assert [v.as_dict() for v in refused.value.violations] == [{"rule": "gate_limit"}]
    checked = check_outputs(published, [answer], RULES, GateBudget(100 * cells, seconds=60))
    assert checked.tables["t"].rows == pairs


def test_the_gate_refuses_once_its_deadline_has_passed() -> None:
    published = [Published("t", [["region", "label"], ["n", "count"]], [["north", 42]])]
    with pytest.raises(OutputRejected) as refused:
        check_outputs(published, [ANSWER], RULES, GateBudget(10**9, seconds=0))
    assert [v.as_dict() for v in refused.value.violations] == [{"rule": "gate_limit"}]
    assert check_outputs(published, [ANSWER], RULES, GateBudget(10**9, seconds=60)).tables


# The old definition, row by row: what the index must answer exactly.
def naive_behind(answers: list[Answer], labels: frozenset) -> tuple[int, bool]:
    rows = [
        (frozenset(_labels(row)), units, dominated)
        for answer in answers
        for row, units, dominated in zip(answer.rows, answer.units, answer.dominated, strict=True)
    ]
    return (
        min((units for row, units, _ in rows if labels <= row), default=0),
        any(dominated for row, _, dominated in rows if labels <= row),
    )


LABELS = st.sampled_from(["a", "b", "c", "1", 1, 2, True, False, 0])
CELLS = st.one_of(LABELS, st.floats(allow_nan=False, allow_infinity=False), st.none())


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width), max_size=8))
    units = draw(st.lists(st.integers(0, 30), min_size=len(rows), max_size=len(rows)))
    dominated = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    return Answer([f"c{i}" for i in range(width)], rows, units, dominated)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(answers(), max_size=4),
    st.lists(st.frozensets(st.one_of(LABELS, st.just("z")).map(_label_key), max_size=4)),
)
def test_the_index_answers_exactly_as_the_row_by_row_definition(
    held: list[Answer], asked: list[frozenset]
) -> None:
    released = _Released(held, _Work(GateBudget(10**9, seconds=60)))
    for labels in [*asked, frozenset(), *asked]:  # asked twice: answers from the cache too
        assert released.behind(labels) == naive_behind(held, labels)
