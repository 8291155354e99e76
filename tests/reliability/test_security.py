"""The security review, one test per promise: tokens, secrets, limits, the evaluator, production."""
import base64
import hashlib
import io
import json
import logging

import pytest
import redis
from sqlalchemy import event
from sqlalchemy.engine import make_url

from background.models import Job
from config import QUEUES, ConfigError, from_env
from models import User, db
from tests.reliability.helpers import assert_error, stored
from tests.services import refusing_port
from web import products as products_api
from wsgi import create_app

WRITES = [("POST", "/api/v1/products"), ("PATCH", "/api/v1/products/{lamp}"),
          ("DELETE", "/api/v1/products/{lamp}")]
SECRET_KEY = "secret-key-4f1c9a"
DATABASE_PASSWORD = "database-password-8e2d"
REDIS_PASSWORD = "redis-password-a71b"
MiB = 1024 * 1024


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Headers, made from the valid token, that must not let a write through.
BAD_CREDENTIALS = {
    "none": lambda token: {},
    "a wrong token": lambda token: {"Authorization": "Bearer wrong"},
    "the token changed in its last character": lambda token: {
        "Authorization": f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}"},
    "the stored hash as the token": lambda token: {"Authorization": f"Bearer {sha256(token)}"},
    "the token without Bearer": lambda token: {"Authorization": token},
    "the token as Basic credentials": lambda token: {
        "Authorization": f"Basic {base64.b64encode(token.encode()).decode()}"},
    "an empty bearer token": lambda token: {"Authorization": "Bearer "},
    "the token in a cookie": lambda token: {"Cookie": f"token={token}"},
}


@pytest.mark.parametrize("method, path", WRITES)
@pytest.mark.parametrize("credential", BAD_CREDENTIALS)
def test_writes_without_a_valid_token_are_401_and_change_nothing(client, app, token, lamp,
                                                                 method, path, credential):
    before = stored(app)
    response = client.open(path.format(lamp=lamp), method=method, json={"name": "Hacked"},
                           headers=BAD_CREDENTIALS[credential](token))
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert stored(app) == before


def test_reading_the_audit_trail_without_a_valid_token_is_401(client):
    response = client.get("/api/v1/audit", headers={"Authorization": "Bearer wrong"})
    assert_error(response, 401)


INTEGRATION = {"f": "x", "a": 0, "b": 1, "c": 0, "d": 1}


@pytest.mark.parametrize("path, body", [("/api/v1/jobs/integrate", INTEGRATION),
                                        ("/async_process/start", {})])
def test_a_job_start_with_a_wrong_token_is_401_and_records_no_job(client, app, path, body):
    response = client.post(path, json=body, headers={"Authorization": "Bearer wrong"})
    assert_error(response, 401)
    assert stored(app)[1] == 0


def test_tokens_are_stored_only_as_their_sha256(runner, app):
    output = runner.invoke(args=["users", "create", "bob"]).output
    token = output.strip().splitlines()[-1]
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(name="bob")).scalar_one()
        row = db.session.execute(db.select(User.__table__).filter_by(name="bob")).one()
    assert user.token_hash == sha256(token)
    assert not any(token in str(value) for value in row)


def test_tokens_are_looked_up_by_their_hash_never_compared_raw(app, client, token, auth):
    # The only comparison that involves the token is the database's index
    # lookup of its SHA-256, so how long a comparison takes can only reveal
    # how much of a hash matched, which an attacker cannot steer; no Python
    # code compares the secret itself (so no hmac.compare_digest is needed).
    sent = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, repr(parameters)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", record)
    token_hash = sha256(token)
    lookups = [statement for statement, parameters in sent if token_hash in parameters]
    assert lookups and all("token_hash" in statement for statement in lookups)
    assert not any(token in statement or token in parameters for statement, parameters in sent)


def secret_environment(environment: dict[str, str], redis_url: str) -> dict[str, str]:
    """The test deployment, with a secret key and passwords in its URLs."""
    database = make_url(environment["DATABASE_URL"])
    if database.drivername.startswith("postgres"):
        # The test server trusts local connections, so the password is sent nowhere.
        database = database.set(password=DATABASE_PASSWORD)
    return {**environment, "SECRET_KEY": SECRET_KEY, "REDIS_URL": redis_url,
            "DATABASE_URL": database.render_as_string(hide_password=False)}


def queued_messages(redis_url: str) -> list[str]:
    """Return every message in the Celery queues, with its base64 body decoded."""
    messages = []
    client = redis.Redis.from_url(redis_url)
    for queue in QUEUES:
        for raw in client.lrange(queue, 0, -1):
            body = base64.b64decode(json.loads(raw)["body"]).decode()
            messages.append(f"{raw.decode()}\n{body}")
    return messages


def test_no_secret_reaches_the_logs_error_bodies_or_task_messages(
    environment, redis_server, token, auth, caplog
):
    redis_server.client().config_set("requirepass", REDIS_PASSWORD)
    redis_url = redis_server.url.replace("redis://", f"redis://:{REDIS_PASSWORD}@")
    client = create_app(from_env(secret_environment(environment, redis_url))).test_client()
    secrets = [token, SECRET_KEY, DATABASE_PASSWORD, REDIS_PASSWORD]
    with caplog.at_level(logging.DEBUG):
        lamp = client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).json["id"]
        responses = [
            client.patch(f"/api/v1/products/{lamp}", json={"name": "Lamp 2"}, headers=auth),
            client.post("/api/v1/jobs/integrate", json=INTEGRATION,
                        headers=auth),
            client.post("/async_process/start", json={"steps": 2}, headers=auth),
            client.get("/api/v1/add/1/2", headers=auth),
            client.get("/api/v1/products", headers=auth),
            client.post("/api/v1/products", json={"name": ""}, headers=auth),
            client.post("/api/v1/products", json={"name": "Lamp"},
                        headers={"Authorization": f"Bearer {token}x"}),
            client.patch("/api/v1/products/999999", json={"name": "x"}, headers=auth),
            client.post("/api/v1/products", data="x" * (MiB + 1), headers=auth,
                        content_type="application/json"),
            client.get("/health"),
        ]
    messages = queued_messages(redis_url)

    assert {response.status_code for response in responses} == {200, 202, 401, 404, 413, 422}
    for response in responses:
        assert not any(secret in response.get_data(as_text=True) for secret in secrets)
        assert not any(secret in str(response.headers) for secret in secrets)
    assert not any(secret in caplog.text for secret in secrets)
    names = " ".join(messages)
    for task in ("background.audit.store_audit_event", "background.run_job", "tasks.very_slow_add"):
        assert task in names
    for message in messages:
        assert not any(secret in message for secret in secrets)


def test_no_secret_reaches_the_logs_or_bodies_when_the_services_are_down(
    environment, token, auth, caplog, monkeypatch
):
    secrets = [token, SECRET_KEY, DATABASE_PASSWORD, REDIS_PASSWORD]
    with refusing_port() as port, caplog.at_level(logging.DEBUG):
        down = {"SECRET_KEY": SECRET_KEY, "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"}
        no_broker = create_app(from_env({**environment, **down})).test_client()
        responses = [
            no_broker.get("/api/v1/products"),
            no_broker.post("/api/v1/products", json={"name": "Lamp"}, headers=auth),
            no_broker.post("/api/v1/jobs/integrate", json=INTEGRATION, headers=auth),
            no_broker.get("/health"),
        ]
        down["DATABASE_URL"] = f"postgresql://postgres:{DATABASE_PASSWORD}@127.0.0.1:{port}/none"
        nothing = create_app(from_env({**environment, **down})).test_client()
        responses += [nothing.get("/api/v1/products"), nothing.get("/health")]
        monkeypatch.setattr(products_api, "products_page", lambda **kwargs: 1 / 0)
        responses.append(no_broker.get("/api/v1/products"))

    assert [response.status_code for response in responses] == [200, 201, 503, 503, 503, 503, 500]
    for response in responses:
        assert not any(secret in response.get_data(as_text=True) for secret in secrets)
    assert "Could not queue" in caplog.text and "Unhandled error" in caplog.text
    assert not any(secret in caplog.text for secret in secrets)


def test_a_body_over_1_mib_is_refused_with_a_json_413(client, auth, app):
    response = client.post("/api/v1/products", data=b"x" * (MiB + 1), headers=auth,
                           content_type="application/json")
    assert_error(response, 413)
    assert stored(app)[0] == []


def test_a_chunked_body_without_a_length_is_cut_at_1_mib(client, auth, app):
    body = json.dumps({"name": "Lamp", "description": "x" * (2 * MiB)}).encode()
    response = client.post("/api/v1/products", input_stream=io.BytesIO(body), headers=auth,
                           content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True})
    assert_error(response, 413)
    assert stored(app)[0] == []


ATTACKS = [
    "__import__('os').system('touch {marker}')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('{marker}', 'w').write('x')",
    "eval(\"__import__('os').system('touch {marker}')\")",
    "exec('import os')",
    "sqrt.__globals__['__builtins__']",
    "[x for x in ().__class__.__mro__]",
    "(lambda: __import__('os'))()",
    "globals()",
    "breakpoint()",
    "xs.__class__",
    "np.os.system('touch {marker}')",
    "'a' * 10**9",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_integrand_cannot_run_code_through_the_api(client, app, tmp_path, attack):
    marker = tmp_path / "pwned"
    body = {"f": attack.format(marker=marker), "a": 0, "b": 1, "c": 0, "d": 1}
    response = client.post("/api/v1/jobs/integrate", json=body)
    assert_error(response, 422)
    assert response.json["errors"]["f"]
    with app.app_context():
        assert db.session.execute(db.select(Job)).first() is None
    assert not marker.exists()


@pytest.mark.parametrize("value", [None, ""])
def test_production_refuses_to_start_without_a_secret_key(environment, value):
    production = {**environment, "APP_ENV": "production", "SECRET_KEY": value}
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        from_env({name: v for name, v in production.items() if v is not None})


def test_production_never_runs_in_debug_mode(environment, monkeypatch):
    # Flask turns debug mode on from FLASK_DEBUG; a variable left set on a
    # production dyno must not do that to the gunicorn app.
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app(from_env({**environment, "APP_ENV": "production", "SECRET_KEY": "s"}))
    assert app.debug is False
    assert app.config["TESTING"] is False


def test_the_html_page_carries_the_security_headers(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
