"""The OpenAPI document declares Veil's real answers, and requests that are not valid are
refused alike: 422 BAD_REQUEST naming the body, the body field or the parameter at fault."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Server

ERROR_BODY = "#/components/schemas/ErrorBody"
PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/v1/disclosure"),
    ("get", "/v1/ledger/checkpoint"),
    ("get", "/v1/ledger/public-key"),
    ("get", "/v1/ledger/proof/inclusion"),
    ("get", "/v1/ledger/proof/consistency"),
    ("get", "/v1/certificates/{code}"),
}


@pytest.fixture(scope="module")
def document(demo: Server) -> dict:
    return httpx.get(f"{demo.url}/openapi.json", timeout=30).raise_for_status().json()


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_is_veils_error_body_with_an_example(document: dict) -> None:
    assert not {"HTTPValidationError", "ValidationError"} & document["components"]["schemas"].keys()
    for method, path, operation in _operations(document):
        statuses = operation["responses"]
        assert "500" in statuses, (method, path)
        for status, response in statuses.items():
            if int(status) < 400 or (path, status) == ("/readyz", "503"):
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": ERROR_BODY}, (method, path, status)
            assert media["example"]["error"]["code"], (method, path, status)


def test_keyed_routes_declare_refusals_and_public_ones_need_no_key(document: dict) -> None:
    for method, path, operation in _operations(document):
        if (method, path) in PUBLIC:
            assert operation["security"] == [], (method, path)
        else:
            assert "security" not in operation and "401" in operation["responses"], (method, path)
    assert "403" in document["paths"]["/v1/queries"]["post"]["responses"]
    body = document["components"]["schemas"]["ErrorDetail"]
    assert set(body["required"]) == {"code", "message", "violations"}


def test_success_bodies_are_typed_and_media_types_declared(document: dict) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    for method, path, operation in _operations(document):
        success = next(s for s in operation["responses"] if s.startswith("2"))
        content = operation["responses"][success]["content"]
        if "application/json" in content:
            assert content["application/json"]["schema"] != {}, (method, path)
    paths = document["paths"]
    assert paths["/metrics"]["get"]["responses"]["200"]["content"] == {
        "text/plain": {"schema": {"type": "string"}}
    }
    settlement = paths["/v1/settlements"]["get"]["responses"]["200"]["content"]
    assert settlement.keys() == {"application/json", "text/csv"}
    query = paths["/v1/queries"]["post"]["responses"]["200"]["content"]["application/json"]
    assert "QueryResult" in str(query["schema"])


def _refused(response: httpx.Response) -> dict:
    assert response.status_code == 422, response.text
    return response.json()["error"]


@pytest.mark.parametrize(
    ("content", "content_type", "rule"),
    [
        ('{"sql": ', "application/json", "invalid_json"),
        ('{"sql": "SELECT 1"}', "text/plain", "invalid_body"),
        ("[1, 2]", "application/json", "invalid_body"),
    ],
)
def test_a_body_that_is_not_json_or_not_an_object_names_the_body(
    demo: Server, content: str, content_type: str, rule: str
) -> None:
    with demo.client("analyst") as client:
        error = _refused(
            client.post("/v1/queries", content=content, headers={"Content-Type": content_type})
        )
    assert error == {
        "code": "BAD_REQUEST",
        "message": "the request body is not valid",
        "violations": [{"rule": rule, "column": "body"}],
    }


def test_a_broken_upload_is_a_422_not_a_400(demo: Server) -> None:
    with demo.client("city-hospital") as client:
        response = client.post(
            "/v1/assets",
            content=b"--x\r\nnot a part",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
    error = _refused(response)
    assert error["code"] == "BAD_REQUEST"
    assert error["violations"] == [{"rule": "invalid_body", "column": "body"}]


def test_a_body_field_is_named_by_its_path(demo: Server) -> None:
    with demo.client("analyst") as client:
        error = _refused(
            client.post("/v1/grants", json={"assets": [], "quotas": {"rows_scanned": 0}})
        )
    assert error["message"] == "the request body is not valid"
    named = {violation["column"] for violation in error["violations"]}
    assert {"assets", "quotas.rows_scanned", "purpose"} <= named
    assert {violation["rule"] for violation in error["violations"]} == {"invalid_field"}


@pytest.mark.parametrize(
    ("who", "path", "params", "headers", "message", "name"),
    [
        ("supervisor", "/v1/ledger/entries", {"limit": "many"}, {},
         "the query parameter 'limit' is not valid", "limit"),
        ("analyst", "/v1/jobs/not-a-job", {}, {},
         "the path parameter 'job_id' is not valid", "job_id"),
        ("supervisor", "/v1/settlements", {"period": "2026-13"}, {},
         "the query parameter 'period' is not valid", "period"),
    ],
)  # fmt: skip
def test_a_parameter_is_named_as_a_parameter(
    demo: Server, who: str, path: str, params: dict, headers: dict, message: str, name: str
) -> None:
    with demo.client(who) as client:
        error = _refused(client.get(path, params=params, headers=headers))
    assert error == {
        "code": "BAD_REQUEST",
        "message": message,
        "violations": [{"rule": "invalid_parameter", "column": name}],
    }


def test_a_header_and_a_body_at_fault_are_both_named(demo: Server) -> None:
    with demo.client("analyst") as client:
        response = client.post("/v1/queries", json={"sql": ""}, headers={"Idempotency-Key": "a b"})
    error = _refused(response)
    assert error["message"] == (
        "the header 'Idempotency-Key' is not valid; the request body is not valid"
    )
    assert {(v["rule"], v["column"]) for v in error["violations"]} == {
        ("invalid_parameter", "Idempotency-Key"),
        ("invalid_field", "sql"),
    }
