"""The products REST API under /api/v1, and the audit trail of its changes."""
import logging

from flask import Blueprint, abort, current_app, request, url_for
from kombu.exceptions import OperationalError

from background.audit import audit
from background.models import audit_page
from models import MAX_ID, Product, change_product, db, products_page, remove_product
from schemas import pagination_schema, product_schema, product_update_schema, products_schema
from tasks import very_slow_add
from web.auth import token
from web.paging import pagination_headers
from web.schemas import audit_events_schema

logger = logging.getLogger(__name__)

bp = Blueprint("products", __name__, url_prefix="/api/v1")

PRODUCT_ID = "<int:product_id>"


@bp.get("/products")
def list_products():
    """List products by id, a page at a time, and start the slow task without waiting."""
    page = products_page(**pagination_schema.load(request.args))
    try:
        very_slow_add.apply_async((1, 2), ignore_result=True, queue="fire-and-forget",
                                  expires=current_app.config["SLOW_ADD_EXPIRES"])
    except OperationalError as error:
        logger.warning("Could not queue very_slow_add: %s", error)
    return products_schema.dump(page.items), 200, pagination_headers(page)


@bp.get(f"/products/{PRODUCT_ID}")
def get_product(product_id: int):
    """Show one product."""
    return product_schema.dump(product_or_404(product_id))


@bp.post("/products")
@token(required=True)
def create_product():
    """Create a product."""
    product = Product(**product_schema.load(request.get_json()))
    db.session.add(product)
    db.session.flush()
    # Dumped before the commit, which expires the object: read again after
    # it, a product that another client deletes at once would be missing.
    body = product_schema.dump(product)
    db.session.commit()
    audit("create", body["id"])
    return body, 201, {"Location": url_for(".get_product", product_id=body["id"])}


@bp.patch(f"/products/{PRODUCT_ID}")
@token(required=True)
def update_product(product_id: int):
    """Change some fields of a product."""
    changes = product_update_schema.load(request.get_json())
    product = change_product(product_id, changes)
    if product is None:
        abort(404, missing(product_id))
    body = product_schema.dump(product)
    db.session.commit()
    if changes:
        audit("update", product_id)
    return body


@bp.delete(f"/products/{PRODUCT_ID}")
@token(required=True)
def delete_product(product_id: int):
    """Delete a product."""
    if not remove_product(product_id):
        abort(404, missing(product_id))
    db.session.commit()
    audit("delete", product_id)
    return "", 204


@bp.get("/audit")
@token(required=True)
def list_audit_events():
    """List who changed which product, newest first, a page at a time."""
    page = audit_page(**pagination_schema.load(request.args))
    return audit_events_schema.dump(page.items), 200, pagination_headers(page)


def product_or_404(product_id: int) -> Product:
    """Return the product, or abort with 404 if it does not exist."""
    # An id past the column's range cannot exist, and some databases raise
    # an overflow rather than find nothing. (A `max` on the route converter
    # would not do: Werkzeug then answers 405 to PATCH and DELETE.)
    if product_id > MAX_ID:
        abort(404, missing(product_id))
    return db.get_or_404(Product, product_id, description=missing(product_id))


def missing(product_id: int) -> str:
    return f"There is no product with id {product_id}."
