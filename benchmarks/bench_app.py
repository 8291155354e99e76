"""The production app, plus two routes that only the benchmark serves.

    gunicorn --config gunicorn.conf.py benchmarks.bench_app:app

- GET /bench/ok: the ceiling, a plain Flask "ok" under the same gunicorn;
- GET /bench/products-without-publishing: GET /api/v1/products with its
  enqueue replaced by a no-op, to measure what the enqueue costs.

The production app never has them: wsgi.py does not import this module.
"""
import products_api
import tasks
from wsgi import app

celery = app.extensions["celery"]


def skip_publishing(*args, **kwargs) -> None:
    """Stand in for tasks.fire_and_forget, publishing nothing."""


def ok() -> str:
    """Answer as little as Flask can: the ceiling for any endpoint of this app."""
    return "ok"


def list_products_without_publishing():
    """Serve the real products list, with its fire-and-forget publish replaced by a no-op."""
    # gunicorn's sync workers serve one request at a time, so swapping the
    # module's name for the duration of one request cannot leak into another.
    products_api.fire_and_forget = skip_publishing
    try:
        return products_api.list_products()
    finally:
        products_api.fire_and_forget = tasks.fire_and_forget


app.add_url_rule("/bench/ok", view_func=ok)
app.add_url_rule("/bench/products-without-publishing", view_func=list_products_without_publishing)
