"""Hostile bodies, headers and URLs get a JSON error (or a proper success), never a 500.

Each write is sent to creating a product, changing one, starting an
integration and starting an async process; a refused request stores nothing.
"""
import json

import pytest

from tests.reliability.helpers import assert_error, stored

WRITES = {
    "create product": ("POST", "/api/v1/products"),
    "update product": ("PATCH", "/api/v1/products/{lamp}"),
    "integrate": ("POST", "/api/v1/jobs/integrate"),
    "async process": ("POST", "/async_process/start"),
}
# A valid body for each write, that a test spoils one field of.
VALID = {
    "create product": {"name": "Lamp", "description": "Bright"},
    "update product": {"name": "Lamp 2"},
    "integrate": {"f": "sqrt(4-xs**2)", "a": 0, "b": 2, "c": 0, "d": 2, "size": 100},
    "async process": {"steps": 3},
}
# For each write, a field that holds a string and one that holds a number.
TEXT_FIELD = {"create product": "name", "update product": "name", "integrate": "f"}
NUMBER_FIELD = {"integrate": "a", "async process": "steps"}
DEEP = 100_000
MiB = 1024 * 1024


def send(client, auth, write: str, lamp: int, data: bytes | str,
         content_type: str | None = "application/json", headers: dict | None = None):
    method, path = WRITES[write]
    return client.open(path.format(lamp=lamp), method=method, data=data,
                       content_type=content_type, headers={**auth, **(headers or {})})


def with_field(write: str, field: str, literal: str) -> str:
    """Return the write's valid body as JSON text, with field set to a raw JSON literal."""
    body = json.dumps({**VALID[write], field: "PLACEHOLDER"})
    return body.replace('"PLACEHOLDER"', literal)


UNREADABLE_BODIES = {
    "arrays nested 100k deep": "[" * DEEP + "]" * DEEP,
    "objects nested 100k deep": '{"a":' * DEEP + "1" + "}" * DEEP,
    "a 5,000-digit integer": '{"steps": ' + "9" * 5000 + "}",
    "invalid UTF-8": b'{"name": "\xff\xfe\xc3\x28"}',
    "a raw NUL byte in a string": b'{"name": "a\x00b"}',
    "truncated JSON": '{"name": "Lamp"',
    "a lone UTF-16 BOM": b"\xfe\xff",
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("body", UNREADABLE_BODIES.values(), ids=UNREADABLE_BODIES)
def test_unreadable_json_is_400_and_stores_nothing(client, auth, app, lamp, write, body):
    before = stored(app)
    assert_error(send(client, auth, write, lamp, body), 400)
    assert stored(app) == before


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("literal", ["[]", '"text"', "null", "42", "NaN"])
def test_a_body_that_is_not_an_object_is_422_and_stores_nothing(client, auth, app, lamp, write,
                                                                literal):
    before = stored(app)
    assert_error(send(client, auth, write, lamp, literal), 422)
    assert stored(app) == before


NUMBER_LITERALS = ["1e400", "-1e400", str(10**400), str(-(10**400)), "NaN", "Infinity",
                   "-Infinity", '"7"', "true"]


@pytest.mark.parametrize("write", NUMBER_FIELD)
@pytest.mark.parametrize("literal", NUMBER_LITERALS)
def test_huge_special_or_mistyped_numbers_are_422_and_store_nothing(client, auth, app, lamp,
                                                                    write, literal):
    before = stored(app)
    response = send(client, auth, write, lamp, with_field(write, NUMBER_FIELD[write], literal))
    assert_error(response, 422)
    assert NUMBER_FIELD[write] in response.json["errors"]
    assert stored(app) == before


@pytest.mark.parametrize("field", ["size", "seed", "b", "c", "d"])
@pytest.mark.parametrize("literal", ["1e400", str(10**400), "NaN", "-Infinity"])
def test_every_number_of_an_integration_refuses_huge_and_special_values(client, auth, app, lamp,
                                                                         field, literal):
    response = send(client, auth, "integrate", lamp, with_field("integrate", field, literal))
    assert_error(response, 422)
    assert stored(app)[1] == 0


TEXT_LITERALS = {
    "an escaped NUL": '"a\\u0000b"',
    "a lone surrogate": '"\\ud800"',
    "a number as big as 10**400": str(10**400),
    "a huge float": "1e400",
    "NaN": "NaN",
    "an object": '{"$gt": ""}',
    "a 100k-character string": json.dumps("x" * 100_000),
}


@pytest.mark.parametrize("write", TEXT_FIELD)
@pytest.mark.parametrize("literal", TEXT_LITERALS.values(), ids=TEXT_LITERALS)
def test_text_fields_refuse_what_cannot_be_stored_with_422(client, auth, app, lamp, write,
                                                           literal):
    before = stored(app)
    response = send(client, auth, write, lamp, with_field(write, TEXT_FIELD[write], literal))
    assert_error(response, 422)
    assert TEXT_FIELD[write] in response.json["errors"]
    assert stored(app) == before


@pytest.mark.parametrize("write", WRITES)
def test_a_10_mib_body_is_413_and_stores_nothing(client, auth, app, lamp, write):
    before = stored(app)
    body = json.dumps({**VALID[write], "padding": "x" * (10 * MiB)})
    assert_error(send(client, auth, write, lamp, body), 413)
    assert stored(app) == before


CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/xml", "text/json", None]


@pytest.mark.parametrize("write", ["create product", "update product", "integrate"])
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_body_that_is_not_declared_json_is_415_and_stores_nothing(client, auth, app, lamp,
                                                                    write, content_type):
    before = stored(app)
    response = send(client, auth, write, lamp, json.dumps(VALID[write]), content_type)
    assert_error(response, 415)
    assert stored(app) == before


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_an_async_process_body_that_is_not_json_is_415(client, auth, app, lamp, content_type):
    response = send(client, auth, "async process", lamp, '{"steps": 3}', content_type)
    assert_error(response, 415)
    assert stored(app)[1] == 0


def test_an_async_process_without_a_body_starts_with_the_defaults(client, auth, app, lamp):
    response = send(client, auth, "async process", lamp, b"", content_type=None)
    assert response.status_code == 202
    assert stored(app)[1] == 1


def test_duplicate_keys_take_the_last_value_as_validated_and_stored(client, auth, app):
    # As JSON.parse does in JavaScript; what is validated is what is stored.
    body = '{"name": "", "name": "Lamp", "description": "a", "description": null}'
    response = client.post("/api/v1/products", data=body, content_type="application/json",
                           headers=auth)
    assert response.status_code == 201
    assert (response.json["name"], response.json["description"]) == ("Lamp", None)
    assert stored(app)[0] == [(response.json["id"], "Lamp", None)]


def test_a_duplicate_key_cannot_smuggle_an_invalid_value_past_validation(client, auth, app):
    body = '{"name": "Lamp", "name": ""}'
    response = client.post("/api/v1/products", data=body, content_type="application/json",
                           headers=auth)
    assert_error(response, 422)
    assert stored(app)[0] == []


UNICODE_NAMES = [
    "Łódź lamp", "ランプ", "مصباح", "💡" * 120, "e\u0301" * 60, "\u202eevil\u202c",
    "\ufeffBOM", "\U0010fffd",
]


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_unicode_names_round_trip_exactly(client, auth, app, name):
    response = client.post("/api/v1/products", json={"name": name}, headers=auth)
    assert response.status_code == 201
    assert client.get(response.headers["Location"]).json["name"] == name
    assert stored(app)[0] == [(response.json["id"], name, None)]


def test_a_name_of_121_astral_characters_is_too_long(client, auth, app):
    response = client.post("/api/v1/products", json={"name": "💡" * 121}, headers=auth)
    assert_error(response, 422)
    assert stored(app)[0] == []


OVERLONG = "x" * 64 * 1024


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("header", ["X-Padding", "User-Agent", "Content-Type", "Authorization"])
def test_a_64_kib_header_never_causes_a_500(client, auth, app, lamp, write, header):
    before = stored(app)
    value = {"Content-Type": f"application/json; x={OVERLONG}",
             "Authorization": f"Bearer {OVERLONG}"}.get(header, OVERLONG)
    response = send(client, auth, write, lamp, json.dumps(VALID[write]), headers={header: value})
    if header == "Authorization":
        assert_error(response, 401)
        assert stored(app) == before
    else:
        assert response.status_code in (200, 201, 202), response.json


@pytest.mark.parametrize("path", [
    "/api/v1/products/%ff", "/api/v1/products/1%00", "/api/v1/products/-1",
    f"/api/v1/products/{10**400}", "/api/v1/jobs/not-a-uuid",
    "/async_process/%00", f"/api/v1/add/{'9' * 5000}/1",
])
def test_ids_that_cannot_exist_are_404(client, path):
    assert_error(client.get(path), 404)


@pytest.mark.parametrize("path", ["/api/v1/add/9007199254740992/1", f"/api/v1/add/{10**400}/1"])
def test_operands_too_large_to_add_exactly_are_400(client, app, path):
    assert_error(client.get(path), 400)
    assert stored(app)[1] == 0


@pytest.mark.parametrize("query", [
    "page=%ff", "page=1%00", f"page={10**400}", "per_page=1e3", "page=" + "9" * 5000,
])
def test_bad_page_numbers_are_400(client, query):
    assert_error(client.get(f"/api/v1/products?{query}"), 400)


@pytest.mark.parametrize("list_path", ["/api/v1/products", "/api/v1/jobs"])
@pytest.mark.parametrize("name", ["_external", "_anchor", "_scheme", "_method", "endpoint"])
def test_query_arguments_that_url_for_reserves_stay_in_the_links(client, list_path, name):
    # Flask's url_for takes these for itself: passed through it, ?_external=1 was a 500.
    response = client.get(f"{list_path}?{name}=x%3Cy&per_page=5")
    assert response.status_code == 200
    assert f'<http://localhost{list_path}?{name}=x%3Cy&per_page=5&page=1>; rel="first"' in (
        response.headers["Link"])
