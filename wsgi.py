"""The application factory, and the app that gunicorn and Celery load.

    gunicorn wsgi:app
    celery -A wsgi:celery worker

Both are made on first use rather than on import, so that importing
create_app (as the tests do) reads no .env and creates no folder.
"""
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery
from flask import Flask

import background.housekeeping  # noqa: F401  registers the task that beat sends
import background.queues  # noqa: F401  stamps every task message with its publish time
import background.worker  # noqa: F401  connects the worker's own settings
import web
from config import from_env
from models import Product, db
from schemas import ma
from tasks import make_celery, very_slow_add


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the Flask app from config, or from the environment when None."""
    config = from_env() if config is None else config
    app = Flask(__name__, instance_path=config["INSTANCE_PATH"])
    app.config.from_mapping(config)
    for folder in app.config.get("DATA_FOLDERS", ()):
        Path(folder).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    ma.init_app(app)
    celery = make_celery(app)
    web.init_app(app)

    @app.shell_context_processor
    def shell_context() -> dict[str, Any]:
        return {"db": db, "Product": Product, "very_slow_add": very_slow_add, "celery": celery}

    return app


@functools.cache
def default_app() -> Flask:
    """Return the app made from the environment, made once."""
    return create_app()


def __getattr__(name: str) -> Flask | Celery:
    """Give `wsgi:app` and `wsgi:celery` (https://peps.python.org/pep-0562/)."""
    if name == "app":
        return default_app()
    if name == "celery":
        return default_app().extensions["celery"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
