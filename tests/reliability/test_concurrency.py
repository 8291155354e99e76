"""Racing clients on shared rows, against gunicorn with two workers and a real worker, on both databases.

Each round creates a product, then fires DELETEs, PATCHes and POSTs at once,
released together by a barrier, so that they overlap in both gunicorn
workers and in the database.
"""
import http.client
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

from background.models import AuditEvent
from models import Product, db
from tests.conftest import DATABASES
from tests.services import wait_for

pytestmark = pytest.mark.parametrize("database_url", DATABASES, indirect=True)

RACE_SECONDS = 8
DELETES = 4
PATCHES = 6
POSTS = 2
REQUEST_TIMEOUT = 15
# Below this, the test would pass without having raced anything.
MIN_ROUNDS = 10


def send(port: int, method: str, path: str, auth: dict[str, str],
         body: dict | None = None) -> tuple[int, Any]:
    """Send one request on a connection of its own; return the status and the JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    headers = {**auth, "Content-Type": "application/json"}
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    return response.status, json.loads(payload) if payload else None


def race(port: int, auth: dict[str, str], product_id: int, round_: int) -> list[tuple]:
    """Send the round's requests all at once; return (method, status, body) for each."""
    requests = ([("DELETE", f"/api/v1/products/{product_id}", None)] * DELETES
                + [("PATCH", f"/api/v1/products/{product_id}", {"description": f"r{round_}p{n}"})
                   for n in range(PATCHES)]
                + [("POST", "/api/v1/products", {"name": f"Round {round_} new {n}"})
                   for n in range(POSTS)])
    barrier = threading.Barrier(len(requests))
    answers: list[tuple] = [None] * len(requests)

    def run(index: int, method: str, path: str, body: dict | None) -> None:
        barrier.wait(timeout=REQUEST_TIMEOUT)
        try:
            answers[index] = (method, *send(port, method, path, auth, body))
        except OSError as error:
            answers[index] = (method, f"{type(error).__name__}: {error}", None)

    threads = [threading.Thread(target=run, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * 2)
    return answers


def stored_events(app) -> Counter:
    with app.app_context():
        rows = db.session.execute(db.select(AuditEvent.action, AuditEvent.product_id))
        return Counter(tuple(row) for row in rows)


def test_racing_writes_on_shared_rows_never_fail_and_are_each_recorded_once(
        app, web, worker, auth):
    port = web.wait_ready()
    ids_handed_out: list[int] = []
    deleted: list[int] = []
    expected_events: Counter = Counter()
    errors: list[str] = []
    rounds = 0
    deadline = time.monotonic() + RACE_SECONDS
    while time.monotonic() < deadline:
        rounds += 1
        status, product = send(port, "POST", "/api/v1/products", auth, {"name": f"Round {rounds}"})
        assert status == 201, product
        ids_handed_out.append(product["id"])
        deleted.append(product["id"])
        expected_events["create", product["id"]] += 1

        answers = race(port, auth, product["id"], rounds)
        statuses = Counter((method, status) for method, status, _ in answers)
        unexpected = [a for a in answers
                      if (a[0], a[1]) not in {("DELETE", 204), ("DELETE", 404), ("PATCH", 200),
                                              ("PATCH", 404), ("POST", 201)}]
        if unexpected:
            errors.append(f"round {rounds}: {unexpected}")
        if statuses["DELETE", 204] != 1:
            errors.append(f"round {rounds}: {statuses['DELETE', 204]} DELETEs answered 204")
        expected_events["delete", product["id"]] += statuses["DELETE", 204]
        expected_events["update", product["id"]] += statuses["PATCH", 200]
        for method, status, body in answers:
            if (method, status) == ("POST", 201):
                ids_handed_out.append(body["id"])
                expected_events["create", body["id"]] += 1

    assert errors == [], "\n".join(errors[:20])
    assert rounds >= MIN_ROUNDS
    assert len(set(ids_handed_out)) == len(ids_handed_out), "an id was handed out twice"
    with app.app_context():
        back = db.session.execute(db.select(Product.id).where(Product.id.in_(deleted))).first()
        assert back is None, "a deleted product is back"
    # The worker stores the events; once it has stored as many as there were
    # changes, each change must have exactly one.
    wait_for(lambda: stored_events(app).total() >= expected_events.total(), timeout=60,
             interval=0.2)
    assert stored_events(app) == expected_events
    print(f"FIGURE race rounds={rounds} requests={rounds * (1 + DELETES + PATCHES + POSTS)} "
          f"changes={expected_events.total()}")
