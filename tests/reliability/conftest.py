"""The reliability suite's app: the shared database, and a private Redis that no worker reads.

These tests queue thousands of tasks (every product listing fires one); on a
Redis of their own, none of them reaches another test's worker.
"""
from collections.abc import Iterator
from typing import Any

import pytest

from config import from_env
from models import Product, db
from tests.services import RedisServer
from wsgi import create_app


@pytest.fixture
def app(environment: dict[str, str], redis_server: RedisServer) -> Iterator[Any]:
    app = create_app(from_env({**environment, "REDIS_URL": redis_server.url}))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def lamp(app) -> int:
    """A stored product for updates and deletes to target."""
    with app.app_context():
        product = Product(name="Lamp", description="Original")
        db.session.add(product)
        db.session.commit()
        return product.id
