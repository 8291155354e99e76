"""The audit trail of product changes, written in the background with the request's context."""
import logging
import uuid
from datetime import datetime

from flask import g, request, url_for

from background.asynctask import asynctask
from background.jobs import RETRY_ON_DATABASE_ERRORS
from background.models import ADDRESS_LENGTH, PATH_LENGTH, AuditEvent, clip
from models import db, utcnow

logger = logging.getLogger(__name__)


def audit(action: str, product_id: int) -> None:
    """Record an audit event for the change the current request has just committed.

    The event is queued so that the response does not wait for it. When the
    broker cannot take it, it is stored here and now instead: a trail that
    drops changes while the broker is down is no audit trail.
    """
    event = (action, product_id, utcnow().isoformat(), uuid.uuid4().hex)
    if store_audit_event(*event) is None:
        logger.warning("Storing the audit event of %s %s in the request", action, product_id)
        store_audit_event.__wrapped__(*event)


# A database that fails for a moment delays the event rather than losing it;
# the key makes a retry that finds it stored a no-op.
@asynctask(**RETRY_ON_DATABASE_ERRORS)
def store_audit_event(action: str, product_id: int, at: str, key: str) -> None:
    """Store who did action to the product, as seen in the request that did it, once per key."""
    if db.session.execute(db.select(AuditEvent.id).filter_by(key=key)).first() is not None:
        return  # stored already: by the request after a publish that timed out, or a retry
    db.session.add(AuditEvent(
        key=key, user=g.user, action=action, product_id=product_id, method=request.method,
        path=clip(canonical_path(), PATH_LENGTH),
        remote_addr=clip(request.remote_addr, ADDRESS_LENGTH),
        created_at=datetime.fromisoformat(at),
    ))
    db.session.commit()


def canonical_path() -> str:
    """Return the request's path as the app spells it: /products/5, never /products/0005."""
    if request.url_rule is None:
        return request.path
    return url_for(request.endpoint, **request.view_args)
