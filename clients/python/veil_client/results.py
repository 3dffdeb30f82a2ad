"""A query's answer: checked rows with their notes, cost, privacy and ledger receipt."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from veil_client.models import Cost, Model, Privacy, Receipt


class Result(Model):
    """The released rows of one query, and the receipt of its ledger entry."""

    query_id: str
    columns: list[str]
    rows: list[list[Any]]
    suppressed_rows: int = 0
    notes: list[str] = []
    cost: Cost
    privacy: Privacy | None = None
    receipt: Receipt

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (install `veil-client[pandas]`)."""
        pandas = _optional("pandas", "pandas", "to_pandas")
        return pandas.DataFrame(self.rows, columns=self.columns)

    def to_arrow(self) -> Any:
        """The rows as a pyarrow Table (install `veil-client[arrow]`)."""
        pyarrow = _optional("pyarrow", "arrow", "to_arrow")
        arrays = [pyarrow.array([row[i] for row in self.rows]) for i in range(len(self.columns))]
        return pyarrow.Table.from_arrays(arrays, names=self.columns)


def _optional(module: str, extra: str, method: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"Result.{method}() needs {module}: pip install 'veil-client[{extra}]'"
        ) from error
