"""The audit trail of product changes, written in the background with the request's context."""
from datetime import datetime

from flask import g, request

from asynctask import asynctask
from models import AuditEvent, db, utcnow

ACTIONS = ("create", "update", "delete")


def audit(action: str, product_id: int) -> None:
    """Queue an audit event for the current request; never delay or fail it."""
    store_audit_event(action, product_id, utcnow().isoformat())


@asynctask
def store_audit_event(action: str, product_id: int, at: str) -> None:
    """Store who did action to the product, as seen in the request that did it."""
    db.session.add(AuditEvent(
        user=g.user, action=action, product_id=product_id, method=request.method,
        path=request.path, remote_addr=request.remote_addr, created_at=datetime.fromisoformat(at),
    ))
    db.session.commit()


def audit_page(page: int, per_page: int):
    """Return one page of audit events, newest first."""
    query = db.select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)
