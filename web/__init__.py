"""The HTTP side: the JSON API, its errors and authentication, /health, /openapi.json, the page, the CLI."""
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from web import bodies, cli, dashboard, errors, health, jobs, openapi, products


def init_app(app: Flask) -> None:
    """Register the API, its error handlers and the CLI commands with app."""
    bodies.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    for blueprint in (products.bp, jobs.bp, jobs.async_bp, dashboard.bp, openapi.bp, health.bp):
        app.register_blueprint(blueprint)
    if hops := app.config.get("PROXY_HOPS"):
        # The client's address and scheme as the proxy (Heroku's router) saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_port=hops)
