"""Fixtures: an app per test on a real database, Redis and a real worker.

Services come from TEST_DATABASE_URL and TEST_REDIS_URL (CI exports both).
Without TEST_DATABASE_URL the tests use SQLite (and skip the PostgreSQL side
of the tests that run on both); without TEST_REDIS_URL they start a private
redis-server, or skip visibly. REQUIRE_SERVICES=1 turns those
skips into failures, so CI cannot pass by testing nothing.
"""
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from sqlalchemy import create_engine

from config import database_uri, from_env
from models import create_user, db
from tests.services import RedisServer, Worker, private_redis, redis_answers, scratch_database
from wsgi import create_app

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def missing_service(reason: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


# The two databases the app supports. A test whose behaviour depends on the
# database runs on both: @pytest.mark.parametrize("database_url", DATABASES, indirect=True).
DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def database_url(request) -> str:
    """The test session's database: PostgreSQL when TEST_DATABASE_URL is set, else SQLite."""
    default = "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
    return request.getfixturevalue(f"{getattr(request, 'param', default)}_url")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory) -> str:
    """A fresh, migrated SQLite database for this test session."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        missing_service("no TEST_DATABASE_URL to test PostgreSQL on")
    # A database of our own on the server, so that the tests never touch
    # anyone's data.
    with scratch_database(server_url, "products_test") as database:
        url = database.render_as_string(hide_password=False)
        migrate(url)
        yield url


def migrate(url: str) -> None:
    app = create_app(from_env({"APP_ENV": "test", "DATABASE_URL": url}))
    # What the flask command registers before `flask db upgrade` (wsgi.create_app).
    flask_migrate.Migrate(app, db)
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A Redis to use as broker and result backend."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        if not redis_answers(url):
            pytest.fail(f"TEST_REDIS_URL={url} does not answer")
        yield url
        return
    try:
        with private_redis(tmp_path_factory.mktemp("redis")) as server:
            yield server.url
    except FileNotFoundError:
        missing_service("no TEST_REDIS_URL and no redis-server on PATH")


@pytest.fixture
def environment(database_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    """The environment variables of a test deployment; its tables are emptied afterwards."""
    yield {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SLOW_ADD_SECONDS": "0.5",
        "ASYNC_STEP_SECONDS": "0.1",
    }
    engine = create_engine(database_uri(database_url))
    with engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()


@pytest.fixture
def make_app(environment: dict[str, str]):
    """Build another app for this test's deployment, with some variables changed."""
    return lambda **changes: create_app(from_env({**environment, **changes}))


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A private Redis that no worker reads, whose queue and clients a test can inspect."""
    try:
        with private_redis(tmp_path) as server:
            yield server
    except FileNotFoundError:
        missing_service("redis-server is not on PATH")


@pytest.fixture
def app(environment: dict[str, str]) -> Iterator[Any]:
    app = create_app(from_env(environment))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def token(app) -> str:
    """An API token for a user called alice."""
    with app.app_context():
        return create_user("alice")[1]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def worker(app, environment: dict[str, str]) -> Iterator[Worker]:
    """A real Celery worker process on the test Redis and database, with an empty queue."""
    # Tasks that earlier tests queued with no worker running would otherwise
    # run now, against this test's data.
    app.extensions["celery"].control.purge()
    process = Worker(environment, "--concurrency=2")
    try:
        yield process.wait_ready(app.extensions["celery"])
    finally:
        process.stop()
