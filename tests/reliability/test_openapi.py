"""GET /openapi.json: a valid OpenAPI 3 document of every JSON endpoint and of its rules."""
import re
import sys

import pytest
from openapi_spec_validator import validate

from web.openapi import openapi_path
from schemas import WHITESPACE
from tests.reliability.helpers import stored

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


def parameter(document: dict, path: str, name: str, method: str = "get") -> dict:
    [found] = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    return found["schema"]


def test_path_parameters_state_the_values_the_views_take(document):
    for name in ("a", "b"):
        schema = parameter(document, "/api/v1/add/{a}/{b}", name)
        assert (schema["minimum"], schema["maximum"]) == (-(2**52 - 1), 2**52 - 1)
    for method in ("get", "patch", "delete"):
        schema = parameter(document, "/api/v1/products/{product_id}", "product_id", method)
        assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 2**31 - 1)
    schema = parameter(document, "/api/v1/jobs/{job_id}", "job_id")
    assert re.search(schema["pattern"], "0b6e7f7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    assert not re.search(schema["pattern"], "0b6e7f7a1c2d4e5f8a9b0c1d2e3f4a5b")


def test_integrate_states_the_limits_of_f_and_the_rules_it_cannot_express(document):
    properties = document["components"]["schemas"]["Integrate"]["properties"]
    assert (properties["f"]["minLength"], properties["f"]["maxLength"]) == (1, 500)
    assert "sqrt, exp, log, log10, sin, cos, tan, arcsin, arccos, arctan, abs, floor, ceil" in (
        properties["f"]["description"])
    assert "Greater than a" in properties["b"]["description"]
    assert "Greater than c" in properties["d"]["description"]


def patterns(node):
    """Yield every pattern in a document."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns(value)


def test_every_pattern_reads_the_same_in_python_and_ecma_262(document):
    found = list(patterns(document))
    assert len(found) >= 3
    for pattern in found:
        # \s, \d, \w and \b mean other characters in the two dialects; \A, \Z and
        # Python's (?...) groups are not ECMA-262 at all.
        assert not re.search(r"\\[sSdDwWbBAZz]|\(\?[^:=!]", pattern), pattern


def test_the_whitespace_class_is_what_python_strips():
    whitespace = re.compile(f"[{WHITESPACE}]")
    characters = [chr(code) for code in range(sys.maxunicode + 1)]
    assert ([c for c in characters if whitespace.fullmatch(c)]
            == [c for c in characters if c.isspace()])


# Every character that str.isspace() or ECMA-262's \s takes for white space,
# and text around them.
TEXTS = ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", " ", "\x85", "\xa0",
         "\u1680", "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff",
         " \t\u3000 ", " Lamp ", "Lamp", "\x00", "Lamp\x00", "\U0001F680"]


@pytest.mark.parametrize("text", TEXTS, ids=[ascii(text) for text in TEXTS])
@pytest.mark.parametrize("field", ["name", "description"])
def test_a_product_is_created_exactly_when_its_text_matches_the_pattern(client, auth, app,
                                                                        document, text, field):
    pattern = document["components"]["schemas"]["Product"]["properties"][field]["pattern"]
    sent = {"name": "Lamp", "description": None, field: text}
    response = client.post("/api/v1/products", json=sent, headers=auth)
    if re.search(pattern, text):
        assert response.status_code == 201
        assert stored(app)[0] == [(response.json["id"], sent["name"], sent["description"])]
    else:
        assert response.status_code == 422
        assert field in response.json["errors"]
        assert stored(app)[0] == []
