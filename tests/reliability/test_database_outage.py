"""The database goes away, or hangs, and comes back: 503 JSON meanwhile, no traceback, no restart."""
import logging
import os
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from models import db
from tests.reliability.helpers import assert_error
from tests.services import TCPProxy, hanging_listener, wait_for


@pytest.fixture
def proxy(database_url):
    """A cuttable proxy in front of the test PostgreSQL."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no server to lose")
    url = make_url(database_url)
    proxy = TCPProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.cut()


def test_database_outage_answers_503_and_recovers_without_restart(make_app, proxy, auth, caplog):
    proxy, url = proxy
    client = make_app(DATABASE_URL=url).test_client()
    assert client.get("/api/v1/products").status_code == 200

    proxy.cut()
    with caplog.at_level(logging.ERROR):
        started = time.monotonic()
        responses = [
            client.get("/api/v1/products"),
            client.get("/api/v1/products/1"),
            client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth),
            client.get("/api/v1/jobs"),
            client.post("/async_process/start", json={"steps": 1}),
        ]
        seconds = time.monotonic() - started
    for response in responses:
        assert_error(response, 503)
        assert response.json["message"] == "The database is unavailable; try again shortly."
    assert "Traceback" not in caplog.text
    health = client.get("/health")
    assert health.status_code == 503 and health.json["checks"]["database"] == "unavailable"
    print(f"FIGURE database_cut requests=5 all_503 seconds={seconds:.2f}")

    proxy.start()
    back = time.monotonic()
    wait_for(lambda: client.get("/api/v1/products").status_code == 200, timeout=10)
    print(f"FIGURE database_cut recovery_seconds={time.monotonic() - back:.2f}")
    assert client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).status_code == 201


# libpq's shortest connect timeout (config.DATABASE_CONNECT_TIMEOUT), plus room for a busy machine.
HUNG_DATABASE_BOUND = 3.5


def test_a_database_that_accepts_and_never_answers_gets_503_within_the_connect_timeout(
        make_app, auth):
    with hanging_listener() as port:
        client = make_app(
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/test").test_client()
        for method, path, body in [("GET", "/api/v1/products", None),
                                   ("GET", "/api/v1/products/1", None),
                                   ("POST", "/api/v1/products", {"name": "Lamp"}),
                                   ("POST", "/async_process/start", {"steps": 1})]:
            started = time.monotonic()
            response = client.open(path, method=method, json=body, headers=auth)
            seconds = time.monotonic() - started
            assert_error(response, 503)
            assert seconds < HUNG_DATABASE_BOUND, f"{method} {path} took {seconds:.1f} s"
    print(f"FIGURE database_hung last_request_seconds={seconds:.2f}")


def test_a_statement_that_runs_too_long_is_cancelled(make_app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite statements have no timeout")
    app = make_app(DATABASE_STATEMENT_TIMEOUT="0.2")
    with app.app_context():
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"):
            db.session.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 2
