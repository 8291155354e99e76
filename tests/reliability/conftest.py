"""The reliability suite's deployment: the shared database, and a private Redis.

These tests queue thousands of tasks (every product listing fires one). On a
Redis of their own, which the app, make_app and the worker fixture all use,
none of them reaches another test's worker.
"""
from collections.abc import Iterator

import pytest

from models import Product, db
from tests.helpers import procfile
from tests.services import Gunicorn, RedisServer


@pytest.fixture
def environment(environment: dict[str, str], redis_server: RedisServer) -> dict[str, str]:
    return {**environment, "REDIS_URL": redis_server.url}


@pytest.fixture
def lamp(app) -> int:
    """A stored product for updates and deletes to target."""
    with app.app_context():
        product = Product(name="Lamp", description="Original")
        db.session.add(product)
        db.session.commit()
        return product.id


@pytest.fixture
def web(environment: dict[str, str]) -> Iterator[Gunicorn]:
    """The Procfile's web process with two gunicorn workers, as one web dyno runs it.

    Not waited for, so that it boots while the worker fixture does; call wait_ready().
    """
    server = Gunicorn(procfile()["web"], environment)
    try:
        yield server
    finally:
        server.stop()
