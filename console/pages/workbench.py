"""The SQL workbench: ask a question, see the answer as a table and a chart with each noisy
value's interval and the budget left, download it as CSV; refusals name the rules broken."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.pages.grants import purposes
from console.refusals import REFUSED, Refusal, explain
from console.render import bar_chart, page, refused, shown_number
from console.visitors import Poster, Standing, Veil, Visitor, in_standing
from sandbox.guard.syntax import MAX_SQL_CHARS
from services.privacy import budget_report
from services.queries import QueryRequest, authorise_query, run_query

router = APIRouter(prefix="/console")

EXAMPLE = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"


@router.get("/query")
def workbench(request: Request, visitor: Standing, veil: Veil) -> Response:
    return _form(request, visitor, veil, {"sql": EXAMPLE, "purpose": ""})


@router.post("/query")
def ask(
    request: Request,
    visitor: Poster,
    veil: Veil,
    sql: Annotated[str, Form(max_length=MAX_SQL_CHARS)] = "",
    purpose: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    typed = {"sql": sql, "purpose": purpose}
    if not sql.strip():
        refusal = Refusal(422, "BAD_REQUEST", "write a query", [{"rule": "invalid_field",
                                                                  "column": "sql"}])  # fmt: skip
        return _form(request, visitor, veil, typed, refusal)
    request_ = QueryRequest(sql, purpose or None, None)
    try:
        query = authorise_query(veil, caller=visitor.principal, request=request_)
        answer = run_query(veil, query=query)
    except REFUSED as exc:
        return _form(request, visitor, veil, typed, explain(exc))
    veil.control.keep_answer(visitor.token, answer["query_id"], dict(answer, sql=sql))
    return RedirectResponse(f"/console/answers/{answer['query_id']}", status_code=303)


@router.get("/answers/{query_id}")
def shown_answer(
    query_id: str,
    request: Request,
    visitor: Standing,
    veil: Veil,
    dimension: int | None = None,
    measure: int | None = None,
) -> Response:
    """An answer this session was shown, with a chart of the chosen columns."""
    answer = veil.control.kept_answer(visitor.token, query_id)
    if answer is None:
        refusal = Refusal(404, "NOT_FOUND", "this session kept no such answer")
        return refused(request, visitor, refusal)
    columns, rows = answer["columns"], answer["rows"]
    numeric = [i for i in range(len(columns)) if rows and _numbers(rows, i)]
    labels = [i for i in range(len(columns)) if i not in numeric]
    dimension = dimension if dimension in labels else (labels[0] if labels else None)
    measure = measure if measure in numeric else (numeric[0] if numeric else None)
    chart = []
    if dimension is not None and measure is not None:
        drawn = [r for r in rows if r[measure] is not None]
        chart = bar_chart([str(r[dimension]) for r in drawn], [float(r[measure]) for r in drawn])
    try:
        budgets = budget_report(veil, caller=visitor.principal, period=None).get("assets", [])
    except REFUSED:
        budgets = []
    return page(
        request, "answer.html", visitor, answer=answer, chart=chart, labels=labels,
        numeric=numeric, dimension=dimension, measure=measure, budgets=budgets,
        intervals=intervals(answer.get("privacy") or {}),
    )  # fmt: skip


def intervals(privacy: dict) -> dict[str, str]:
    """Each noisy column's 95% interval in words a table header can hold."""
    shown = {}
    for column, accuracy in (privacy.get("columns") or {}).items():
        if "half_width_95" in accuracy:
            shown[column] = f"± {shown_number(accuracy['half_width_95'])}"
        elif accuracy.get("statistic") == "mean":
            total, count = accuracy["sum"], accuracy["count"]
            shown[column] = (f"Σ ± {shown_number(total['half_width_95'])} / "
                             f"n ± {shown_number(count['half_width_95'])}")  # fmt: skip
        elif "rank_error_95" in accuracy:
            shown[column] = f"rank ± {shown_number(accuracy['rank_error_95'])}"
    return shown


@router.get("/answers/{query_id}/csv")
def answer_csv(query_id: str, visitor: Standing, veil: Veil) -> Response:
    answer = veil.control.kept_answer(visitor.token, query_id)
    if answer is None:
        return Response("not found\n", status_code=404, media_type="text/plain")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_cell(name) for name in answer["columns"]])
    writer.writerows([_cell(value) for value in row] for row in answer["rows"])
    disposition = f'attachment; filename="{query_id}.csv"'
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition})  # fmt: skip


def _cell(value: object) -> object:
    """Text a spreadsheet would run as a formula starts with a quote instead."""
    if isinstance(value, str) and value.lstrip(" \u00a0")[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _numbers(rows: list[list], index: int) -> bool:
    values = [row[index] for row in rows if row[index] is not None]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def _form(
    request: Request, visitor: Visitor, veil: Veil, typed: dict, refusal: Refusal | None = None
) -> Response:
    in_standing(veil, visitor)
    status = refusal.status if refusal else 200
    offered = ["", *purposes([stored.card for stored in veil.enclave.store.list()])]
    return page(request, "workbench.html", visitor, status, typed=typed, purposes=offered,
                refusal=refusal)  # fmt: skip
