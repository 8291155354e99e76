"""GET /openapi.json: a valid OpenAPI 3 document of every JSON endpoint (SPEC 10)."""
import pytest
from openapi_spec_validator import validate

from openapi import openapi_path

# Routes that are not JSON: the HTML page and its files.
NOT_JSON = ("static", "dashboard.")


@pytest.fixture
def document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate(document)


def test_every_json_route_is_documented_with_its_summary(app, document):
    summaries = {label: operation["summary"] for label, operation in operations(document)}
    documented = summaries.keys()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(NOT_JSON):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            label = f"{method} {openapi_path(rule.rule)}"
            assert label in documented, f"{label} is not in /openapi.json"
            assert summaries[label] == app.view_functions[rule.endpoint].__doc__.splitlines()[0]


def test_every_error_response_has_the_one_error_shape(document):
    for label, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]["$ref"]
            error = document["components"]["schemas"][schema.rsplit("/", 1)[-1]]
            assert {"code", "message"} <= set(error["required"]), (label, status)


def test_operations_that_can_answer_401_declare_the_bearer_scheme(document):
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for label, operation in operations(document):
        can_refuse = "401" in operation["responses"]
        declares = {"bearer": []} in operation.get("security", [])
        assert can_refuse == declares, label
        if can_refuse:
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


def test_lists_document_their_paging_and_headers(document):
    for path in ("/api/v1/products", "/api/v1/jobs", "/api/v1/audit"):
        operation = document["paths"][path]["get"]
        assert {"page", "per_page"} <= {p["name"] for p in operation["parameters"]}
        assert {"X-Total-Count", "Link"} <= set(operation["responses"]["200"]["headers"])
