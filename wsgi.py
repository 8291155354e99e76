"""The application factory, and the app that gunicorn and Celery load.

    gunicorn wsgi:app
    celery -A wsgi:celery worker
"""
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

import cli
import dashboard
import errors
import health
import jobs_api
import openapi
import products_api
from config import from_env
from models import Product, db
from schemas import ma
from tasks import make_celery, very_slow_add

migrate = Migrate()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the Flask app from config, or from the environment when None."""
    config = from_env() if config is None else config
    app = Flask(__name__, instance_path=config["INSTANCE_PATH"])
    app.config.from_mapping(config)
    for folder in app.config.get("DATA_FOLDERS", ()):
        Path(folder).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    ma.init_app(app)
    migrate.init_app(app, db)
    celery = make_celery(app)

    errors.init_app(app)
    cli.init_app(app)
    app.register_blueprint(products_api.bp)
    app.register_blueprint(jobs_api.bp)
    app.register_blueprint(jobs_api.async_bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(health.bp)
    if hops := app.config.get("PROXY_HOPS"):
        # The client's address and scheme as the proxy (Heroku's router) saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_port=hops)

    @app.shell_context_processor
    def shell_context() -> dict[str, Any]:
        return {"db": db, "Product": Product, "very_slow_add": very_slow_add, "celery": celery}

    return app


app = create_app()
celery = app.extensions["celery"]
