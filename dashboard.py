"""GET /: an HTML dashboard of the products and jobs, kept live by polling the JSON API."""
from flask import Blueprint, current_app, render_template

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
    # The page asks /health why a job waits only where the app has one.
    has_health = any(rule.rule == "/health" for rule in current_app.url_map.iter_rules())
    page = render_template("index.html", health_url="/health" if has_health else "")
    return page, 200, SECURITY_HEADERS
