"""The production app, plus three routes that only the benchmark serves.

    gunicorn --config gunicorn.conf.py benchmarks.bench_app:app

- GET /bench/ok: the ceiling, a plain Flask "ok" under the same gunicorn;
- GET /bench/products-without-publishing: GET /api/v1/products with its
  enqueue replaced by a no-op, to measure what the enqueue costs;
- GET /bench/products-with-bare-lpush: the same with the enqueue replaced by
  one redis-py LPUSH of a message's size to a list nobody reads: the floor
  of any publish that waits for Redis to say it has the message.

The production app never has them: wsgi.py does not import this module.
"""
import redis

import products_api
import tasks
from wsgi import app

celery = app.extensions["celery"]
# About the size of very_slow_add(1, 2)'s message as the broker stores it.
MESSAGE = b"x" * 1000
BARE_LIST = "bench:bare"
bare_client = redis.Redis.from_url(app.config["CELERY"]["broker_url"])


def skip_publishing(*args, **kwargs) -> None:
    """Stand in for tasks.fire_and_forget, publishing nothing."""


def bare_lpush(*args, **kwargs) -> None:
    """Stand in for tasks.fire_and_forget with one LPUSH, the least a publish can do."""
    bare_client.lpush(BARE_LIST, MESSAGE)


def ok() -> str:
    """Answer as little as Flask can: the ceiling for any endpoint of this app."""
    return "ok"


def list_products_publishing_with(stand_in):
    """Serve the real products list, with its fire-and-forget publish replaced by stand_in."""
    # gunicorn's sync workers serve one request at a time, so swapping the
    # module's name for the duration of one request cannot leak into another.
    products_api.fire_and_forget = stand_in
    try:
        return products_api.list_products()
    finally:
        products_api.fire_and_forget = tasks.fire_and_forget


app.add_url_rule("/bench/ok", view_func=ok)
app.add_url_rule("/bench/products-without-publishing", endpoint="products_without_publishing",
                 view_func=lambda: list_products_publishing_with(skip_publishing))
app.add_url_rule("/bench/products-with-bare-lpush", endpoint="products_with_bare_lpush",
                 view_func=lambda: list_products_publishing_with(bare_lpush))
