"""The disclosure gate on published tables: ACRO/OpenSAFELY defaults, enclave-counted units,
labels only from released values, and a refusal for anything that is not a typed table."""

from __future__ import annotations

import pytest

from sandbox.jobs.gate import string_literals
from sandbox.jobs.outputs import OutputRejected, OutputRules, check_outputs
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
        gate(columns, rows, rules=rules)
    assert [v.rule for v in refused.value.violations] == [rule]
    assert "north" not in refused.value.message.lower()


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
