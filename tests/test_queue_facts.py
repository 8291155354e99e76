"""Queue facts in /health: each queue's length and the age of its oldest message, from Redis."""
import time

from config import QUEUES
from tests.helpers import waiting
from tests.services import wait_for


def test_health_reports_each_queues_length_and_the_age_of_its_oldest_message(
    make_app, redis_server
):
    app = make_app(REDIS_URL=redis_server.url)
    client = app.test_client()
    for _ in range(3):
        client.get("/api/v1/products")
    for _ in range(2):
        client.post("/async_process/start", json={"steps": 1})

    before = time.time()
    response = client.get("/health")
    after = time.time()

    assert response.status_code == 200
    queues = response.json["queues"]
    assert {name: facts["length"] for name, facts in queues.items()} == {
        "jobs": 2, "celery": 0, "fire-and-forget": 3}
    assert queues["celery"]["oldest_seconds"] is None
    for name in ("jobs", "fire-and-forget"):
        oldest = min(m["headers"]["published_at"] for m in waiting(redis_server.url, name))
        assert before - oldest - 0.001 <= queues[name]["oldest_seconds"] <= after - oldest


def test_the_oldest_messages_age_grows_while_nobody_takes_it(make_app, redis_server):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    client.get("/api/v1/products")
    first = client.get("/health").json["queues"]["fire-and-forget"]["oldest_seconds"]

    def older() -> float | None:
        age = client.get("/health").json["queues"]["fire-and-forget"]["oldest_seconds"]
        return age if age > first + 0.2 else None

    wait_for(older, timeout=5)


def test_health_reports_no_queue_facts_on_the_embedded_broker(make_app, tmp_path):
    client = make_app(REDIS_URL="", INSTANCE_PATH=str(tmp_path)).test_client()
    client.get("/api/v1/products")
    assert client.get("/health").json["queues"] == {
        name: {"length": None, "oldest_seconds": None} for name in QUEUES}
