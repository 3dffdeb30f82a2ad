"""A client generated from the live /openapi.json parses real answers into its typed models,
successes and Veil's error body alike."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from openapi_python_client import generate
from openapi_python_client.config import Config, ConfigFile, MetaType

from tests.support import Server

PACKAGE = "veil_generated_client"


@pytest.fixture(scope="module")
def generated(demo: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client openapi-python-client writes from the served document, imported."""
    folder = tmp_path_factory.mktemp("client")
    config = Config.from_sources(
        # No formatting hooks: the code is imported, not read.
        ConfigFile(post_hooks=[], package_name_override=PACKAGE),
        MetaType.NONE,
        f"{demo.url}/openapi.json",
        "utf-8",
        overwrite=True,
        output_path=folder / PACKAGE,
    )
    problems = generate(config=config)
    assert not problems, [f"{problem.header}: {problem.detail}" for problem in problems]
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        package = importlib.import_module(PACKAGE)
    yield package
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def _client(generated: ModuleType, demo: Server, who: str) -> Any:
    return generated.AuthenticatedClient(base_url=demo.url, token=demo.keys[who])


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_catalogue_and_an_answer_parse_into_typed_models(generated: ModuleType, demo) -> None:
    models = _module("models")
    with _client(generated, demo, "analyst") as client:
        catalogue = _module("api.assets.list_assets").sync(client=client)
        assert isinstance(catalogue, models.AssetList)
        visits = next(item for item in catalogue.items if item.id == "hospital.visits")
        assert isinstance(visits, models.ActiveAsset) and visits.row_count == 30000
        assert all(isinstance(column, models.Column) for column in visits.columns)

        sql = "SELECT district, COUNT(DISTINCT patient_id) AS patients FROM hospital.visits GROUP BY district"
        answer = _module("api.queries.query").sync(client=client, body=models.QueryBody(sql=sql))
    assert isinstance(answer, models.QueryResult), answer
    assert answer.columns == ["district", "patients"] and answer.rows
    assert isinstance(answer.cost, models.Cost) and answer.cost.currency == "CNY"
    assert isinstance(answer.receipt, models.Receipt) and answer.receipt.ledger_index > 0


def test_refusals_parse_into_the_error_body(generated: ModuleType, demo) -> None:
    models = _module("models")
    with _client(generated, demo, "analyst") as client:
        missing = _module("api.assets.get_asset").sync_detailed("nope.none", client=client)
        rejected = _module("api.queries.query").sync_detailed(
            client=client, body=models.QueryBody(sql="SELECT patient_name FROM hospital.visits")
        )
    assert missing.status_code == 404 and isinstance(missing.parsed, models.ErrorBody)
    assert missing.parsed.error.code == "NOT_FOUND"
    assert rejected.status_code == 422 and isinstance(rejected.parsed, models.ErrorBody)
    assert rejected.parsed.error.code == "QUERY_REJECTED"
    violation = rejected.parsed.error.violations[0]
    assert isinstance(violation, models.Violation) and violation.column == "patient_name"
