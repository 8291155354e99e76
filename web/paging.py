"""Response headers for paginated lists."""
from urllib.parse import urlencode

from flask import request
from flask_sqlalchemy.pagination import Pagination


def pagination_headers(page: Pagination) -> dict[str, str]:
    """Return X-Total-Count and an RFC 8288 Link header (first, prev, next, last) for page."""
    targets = {"first": 1, "last": max(page.pages, 1)}
    if page.has_prev:
        targets["prev"] = page.prev_num
    if page.has_next:
        targets["next"] = page.next_num
    links = ", ".join(
        f'<{page_url(number, page.per_page)}>; rel="{rel}"' for rel, number in targets.items()
    )
    return {"X-Total-Count": str(page.total), "Link": links}


def page_url(number: int, per_page: int) -> str:
    """Return the URL of another page of this list: the request's query with page and per_page set."""
    # Not url_for(endpoint, **request.args): url_for takes _external, _anchor,
    # _scheme and endpoint for itself, so a query naming one was a 500 or a wrong link.
    query = request.args.copy()
    query["per_page"] = per_page
    query["page"] = number
    return f"{request.base_url}?{urlencode(list(query.items(multi=True)))}"
