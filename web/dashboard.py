"""GET /: an HTML dashboard of the products and jobs, kept live by polling the JSON API."""
from flask import Blueprint, render_template, url_for

bp = Blueprint("dashboard", __name__)

# The page loads nothing but its own script and stylesheet, so the strictest
# policy holds: no inline script or style, nothing from another origin, and
# no framing (clickjacking). https://developer.mozilla.org/docs/Web/HTTP/CSP
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@bp.get("/")
def index():
    """Show the dashboard: products, forms that start jobs, and the jobs' live progress."""
    page = render_template("index.html", health_url=url_for("health.health"))
    return page, 200, SECURITY_HEADERS
