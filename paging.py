"""Response headers for paginated lists."""
from flask import request, url_for
from flask_sqlalchemy.pagination import Pagination


def pagination_headers(page: Pagination) -> dict[str, str]:
    """Return X-Total-Count and an RFC 8288 Link header (first, prev, next, last) for page."""
    targets = {"first": 1, "last": max(page.pages, 1)}
    if page.has_prev:
        targets["prev"] = page.prev_num
    if page.has_next:
        targets["next"] = page.next_num
    arguments = {**request.args, "per_page": page.per_page}
    links = ", ".join(
        f'<{url_for(request.endpoint, **{**arguments, "page": number}, _external=True)}>; rel="{rel}"'
        for rel, number in targets.items()
    )
    return {"X-Total-Count": str(page.total), "Link": links}
