"""The caller's request context in background tasks: asynctask and the audit trail."""
import base64
import json
import logging

import pytest

from flask import g

from background.audit import store_audit_event
from background.models import AuditEvent
from models import User, db
from tests import context_probe
from tests.services import Worker, hanging_listener, refusing_port, wait_for


@pytest.fixture
def probe_worker(app, environment):
    """A real worker that also runs the context probe task."""
    worker = Worker(environment, "--include", "tests.context_probe")
    try:
        yield worker.wait_ready(app.extensions["celery"])
    finally:
        worker.stop()


def audit_events(app) -> list[AuditEvent]:
    with app.app_context():
        return db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()


def read_report(path):
    return wait_for(lambda: path.exists() and path.read_text() and json.loads(path.read_text()))


def test_each_product_change_is_audited_with_the_callers_identity(client, app, auth, worker):
    product_id = client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).json["id"]
    client.patch(f"/api/v1/products/{product_id}", json={"name": "Lamp 2"}, headers=auth)
    client.delete(f"/api/v1/products/{product_id}", headers=auth)

    wait_for(lambda: len(audit_events(app)) == 3, timeout=20)
    response = client.get("/api/v1/audit", headers=auth)
    assert response.status_code == 200
    assert [(e["action"], e["method"], e["user"], e["product_id"]) for e in response.json] == [
        ("delete", "DELETE", "alice", product_id),
        ("update", "PATCH", "alice", product_id),
        ("create", "POST", "alice", product_id),
    ]
    created = response.json[-1]
    assert created["path"] == "/api/v1/products" and created["remote_addr"] == "127.0.0.1"
    assert set(created) == {"id", "user", "action", "product_id", "method", "path",
                            "remote_addr", "created_at"}
    assert response.headers["X-Total-Count"] == "3"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong"])
def test_audit_listing_needs_a_valid_token(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    assert client.get("/api/v1/audit", headers=headers).status_code == 401


def test_task_runs_in_the_callers_request_without_its_credentials(app, auth, probe_worker, tmp_path):
    report = tmp_path / "report.json"
    with app.test_request_context(
        "/api/v1/products?colour=red", method="POST",
        headers={**auth, "Cookie": "session=secret", "User-Agent": "probe/1", "X-Trace": "t-1"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    ):
        g.user = db.session.execute(db.select(User).filter_by(name="alice")).scalar_one()
        task_id = context_probe.report_context(str(report))
    assert isinstance(task_id, str) and task_id

    seen = read_report(report)
    assert seen["request"] and seen["user"] == "alice"
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/api/v1/products", {"colour": "red"})
    assert seen["remote_addr"] == "203.0.113.9"
    assert seen["headers"]["User-Agent"] == "probe/1" and seen["headers"]["X-Trace"] == "t-1"
    assert "Authorization" not in seen["headers"] and "Cookie" not in seen["headers"]


def test_credentials_never_reach_the_broker(make_app, redis_server, token, auth):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    client.post("/api/v1/products", json={"name": "Lamp"},
                headers={**auth, "Cookie": "session=secret-cookie"})
    (raw,) = redis_server.client().lrange("celery", 0, -1)
    envelope = json.loads(raw)
    # The task's arguments travel base64-encoded in the envelope's body.
    arguments = base64.b64decode(envelope["body"]).decode()
    assert envelope["headers"]["task"] == "background.audit.store_audit_event"
    assert '"path": "/api/v1/products"' in arguments
    for secret in (token, "secret-cookie"):
        assert secret not in arguments and secret not in raw.decode()


def test_task_called_outside_a_request_runs_with_no_request_and_no_user(app, probe_worker, tmp_path):
    report = tmp_path / "report.json"
    with app.app_context():
        context_probe.report_context(str(report))
    assert read_report(report) == {"app": "wsgi", "request": False, "user": None}


def test_a_user_deleted_before_the_task_runs_is_recorded_as_no_user(
    app, make_app, redis_server, auth, environment
):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    product_id = client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).json["id"]
    # The response came before any worker ran: the audit write is not part of it.
    assert audit_events(app) == []
    with app.app_context():
        db.session.execute(db.delete(User))
        db.session.commit()

    worker = Worker({**environment, "REDIS_URL": redis_server.url})
    try:
        wait_for(lambda: audit_events(app), timeout=30)
    finally:
        worker.stop()
    (event,) = audit_events(app)
    assert (event.user_id, event.action, event.product_id) == (None, "create", product_id)


@pytest.mark.parametrize("broker", [refusing_port, hanging_listener])
def test_with_the_broker_down_every_change_and_its_audit_event_are_stored(make_app, auth, app,
                                                                         broker):
    with broker() as port:
        client = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0").test_client()
        created = client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth)
        product_id = created.json["id"]
        updated = client.patch(f"/api/v1/products/{product_id:05d}", json={"name": "Lamp 2"},
                               headers=auth)
        deleted = client.delete(f"/api/v1/products/{product_id}", headers=auth)
    assert (created.status_code, updated.status_code, deleted.status_code) == (201, 200, 204)
    events = [(e.action, e.method, e.path, e.user.name, e.product_id) for e in audit_events(app)]
    assert events == [
        ("create", "POST", "/api/v1/products", "alice", product_id),
        ("update", "PATCH", f"/api/v1/products/{product_id}", "alice", product_id),
        ("delete", "DELETE", f"/api/v1/products/{product_id}", "alice", product_id),
    ]


def test_an_audit_event_is_stored_once_however_often_its_task_runs(app, auth):
    with app.test_request_context("/api/v1/products/7", method="DELETE", headers=auth):
        g.user = None
        for _ in range(3):
            store_audit_event.__wrapped__("delete", 7, "2026-01-01T00:00:00+00:00", "k" * 32)
    assert [(e.action, e.product_id, e.key) for e in audit_events(app)] == [("delete", 7, "k" * 32)]


@pytest.mark.parametrize("path, stored", [
    ("/api/v1/products/" + "0" * 2500 + "{id}", "/api/v1/products/{id}"),
])
@pytest.mark.parametrize("forwarded_for", ["203.0.113.9", "1" * 60])
def test_long_paths_and_addresses_never_lose_an_audit_event(make_app, auth, app, path, stored,
                                                            forwarded_for, redis_server,
                                                            environment):
    client = make_app(REDIS_URL=redis_server.url, PROXY_HOPS="1").test_client()
    product_id = client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).json["id"]
    response = client.patch(path.format(id=product_id), json={"name": "Lamp 2"},
                            headers={**auth, "X-Forwarded-For": forwarded_for})
    assert response.status_code == 200

    worker = Worker({**environment, "REDIS_URL": redis_server.url})
    try:
        wait_for(lambda: len(audit_events(app)) == 2, timeout=30)
    finally:
        worker.stop()
    (update,) = [event for event in audit_events(app) if event.action == "update"]
    assert update.path == stored.format(id=product_id)
    assert update.remote_addr == forwarded_for[:45]
