"""The products API and its error contract."""
import pytest

from background.models import AuditEvent
from models import Product, User, db, utcnow
from tests.conftest import DATABASES


def add_products(app, count: int) -> list[int]:
    with app.app_context():
        products = [Product(name=f"Product {n}") for n in range(1, count + 1)]
        db.session.add_all(products)
        db.session.commit()
        return [product.id for product in products]


def stored(app, product_id: int) -> Product | None:
    with app.app_context():
        return db.session.get(Product, product_id)


def product_count(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(Product.id))).scalar_one()


def assert_error(response, code: int) -> None:
    assert response.status_code == code
    assert response.mimetype == "application/json"
    assert response.json["code"] == code
    assert isinstance(response.json["message"], str) and response.json["message"]


def test_create_product_returns_201_with_location(client, auth, app):
    response = client.post(
        "/api/v1/products", json={"name": "Lamp", "description": "Bright"}, headers=auth
    )
    assert response.status_code == 201
    assert response.json == {"id": response.json["id"], "name": "Lamp", "description": "Bright"}
    assert response.headers["Location"] == f"/api/v1/products/{response.json['id']}"
    assert stored(app, response.json["id"]).name == "Lamp"


def test_get_product(client, app):
    (product_id,) = add_products(app, 1)
    response = client.get(f"/api/v1/products/{product_id}")
    assert response.status_code == 200
    assert response.json == {"id": product_id, "name": "Product 1", "description": None}


def test_patch_changes_only_the_fields_sent(client, auth, app):
    (product_id,) = add_products(app, 1)
    response = client.patch(
        f"/api/v1/products/{product_id}", json={"description": "New"}, headers=auth
    )
    assert response.status_code == 200
    assert response.json == {"id": product_id, "name": "Product 1", "description": "New"}
    assert stored(app, product_id).description == "New"


def test_delete_product_returns_204(client, auth, app):
    (product_id,) = add_products(app, 1)
    response = client.delete(f"/api/v1/products/{product_id}", headers=auth)
    assert response.status_code == 204
    assert response.data == b""
    assert stored(app, product_id) is None


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("product_id", ["12345", "abc", "99999999999999999999", "-1", "1.5"])
def test_missing_or_malformed_product_id_returns_404(client, auth, method, product_id):
    response = getattr(client, method)(f"/api/v1/products/{product_id}", json={}, headers=auth)
    assert_error(response, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/products"), ("patch", "/api/v1/products/{id}"),
     ("delete", "/api/v1/products/{id}")],
)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic YWxpY2U6cHc=", "Bearer", "garbage"]
)
def test_write_without_a_valid_token_returns_401_and_changes_nothing(
    client, app, method, path, authorization
):
    (product_id,) = add_products(app, 1)
    headers = {"Authorization": authorization} if authorization else {}
    response = getattr(client, method)(
        path.format(id=product_id), json={"name": "Changed"}, headers=headers
    )
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert stored(app, product_id).name == "Product 1"
    assert product_count(app) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "\x1c\x85\u3000"}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "ok", "description": 7}, "description"),
        ({"name": "nul\u0000byte"}, "name"),
        ({"name": "lone \ud800 surrogate"}, "name"),
        ({"name": "ok", "description": "nul\u0000byte"}, "description"),
        ({"name": "ok", "id": 5}, "id"),
        ({"name": "ok", "price": 10}, "price"),
        ([{"name": "ok"}], "_schema"),
        ("a string", "_schema"),
        (1e308, "_schema"),
    ],
)
def test_invalid_product_returns_422_with_field_errors(client, auth, app, body, field):
    response = client.post("/api/v1/products", json=body, headers=auth)
    assert_error(response, 422)
    assert field in response.json["errors"]
    assert product_count(app) == 0


def test_invalid_patch_returns_422_and_keeps_the_product(client, auth, app):
    (product_id,) = add_products(app, 1)
    response = client.patch(f"/api/v1/products/{product_id}", json={"name": ""}, headers=auth)
    assert_error(response, 422)
    assert response.json["errors"] == {"name": ["Length must be between 1 and 120."]}
    assert stored(app, product_id).name == "Product 1"


def test_unicode_names_are_stored_as_sent(client, auth, app):
    name = "Café ☕ 東京 \U0001F680"
    response = client.post("/api/v1/products", json={"name": name}, headers=auth)
    assert response.status_code == 201
    assert stored(app, response.json["id"]).name == name


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        ('{"name": ', "application/json", 400),
        ("[" * 100_000, "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        ('{"name": 1' + "0" * 5000 + "}", "application/json", 400),
        ("", "application/json", 400),
        ('{"name": "x"}', "text/plain", 415),
        ("name=x", "application/x-www-form-urlencoded", 415),
        ('{"name": "x"}', None, 415),
        ('{"name": "' + "x" * (1024 * 1024) + '"}', "application/json", 413),
    ],
)
def test_unreadable_body_returns_json_error(client, auth, app, data, content_type, code):
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/api/v1/products", data=data, headers=headers)
    assert_error(response, code)
    assert product_count(app) == 0


def test_list_is_paginated_by_id_with_total_and_links(client, app):
    ids = add_products(app, 45)
    response = client.get("/api/v1/products?page=2&per_page=20")
    assert response.status_code == 200
    assert [product["id"] for product in response.json] == ids[20:40]
    assert response.headers["X-Total-Count"] == "45"
    links = {
        part.split("; ")[1]: part.split("; ")[0].strip("<>")
        for part in response.headers["Link"].split(", ")
    }
    assert links == {
        'rel="first"': "http://localhost/api/v1/products?page=1&per_page=20",
        'rel="prev"': "http://localhost/api/v1/products?page=1&per_page=20",
        'rel="next"': "http://localhost/api/v1/products?page=3&per_page=20",
        'rel="last"': "http://localhost/api/v1/products?page=3&per_page=20",
    }


def test_list_defaults_to_20_per_page(client, app):
    add_products(app, 25)
    response = client.get("/api/v1/products")
    assert len(response.json) == 20
    assert 'rel="next"' in response.headers["Link"]


def test_page_past_the_end_is_an_empty_array(client, app):
    add_products(app, 3)
    response = client.get("/api/v1/products?page=9")
    assert response.status_code == 200
    assert response.json == []
    assert response.headers["X-Total-Count"] == "3"


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "page=1.5", "page=99999999999999999999",
     "per_page=0", "per_page=101", "per_page=x", "per_page="],
)
def test_bad_pagination_returns_400(client, query):
    assert_error(client.get(f"/api/v1/products?{query}"), 400)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "/nowhere", 404),
        ("put", "/api/v1/products/1", 405),
        ("delete", "/api/v1/products", 405),
    ],
)
def test_flasks_own_errors_are_json(client, method, path, code):
    assert_error(getattr(client, method)(path), code)


def test_unexpected_error_is_json_500_without_traceback(app, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("web.products.products_page", broken)
    response = client.get("/api/v1/products")
    assert_error(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_a_deleted_products_id_is_never_handed_out_again(client, auth):
    first, last = (client.post("/api/v1/products", json={"name": n}, headers=auth).json["id"]
                   for n in ("A", "B"))
    assert client.delete(f"/api/v1/products/{last}", headers=auth).status_code == 204
    response = client.post("/api/v1/products", json={"name": "C"}, headers=auth)
    assert response.json["id"] > last
    assert client.get(f"/api/v1/products/{last}").status_code == 404


ROWS = {
    Product: lambda n: Product(name=f"Product {n}"),
    User: lambda n: User(name=f"user-{n}", token_hash=f"{n:064d}"),
    AuditEvent: lambda n: AuditEvent(action="create", product_id=n, method="POST", path="/",
                                     key=f"{n:032d}", created_at=utcnow()),
}


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
@pytest.mark.parametrize("model", ROWS)
def test_no_table_with_integer_ids_reuses_the_id_of_a_deleted_row(app, model):
    with app.app_context():
        rows = [ROWS[model](n) for n in range(2)]
        db.session.add_all(rows)
        db.session.commit()
        last = rows[-1].id
        db.session.delete(rows[-1])
        db.session.commit()
        row = ROWS[model](2)
        db.session.add(row)
        db.session.commit()
        assert row.id > last
