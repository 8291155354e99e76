"""The broker goes away (refusing, or hanging) and comes back on the same port: nothing restarts."""
import time
from contextlib import nullcontext

import pytest

from tests.helpers import job_rows, wait_for_job
from tests.reliability.helpers import assert_error
from tests.services import Worker, hanging_listener, wait_for

REQUESTS = 50


@pytest.fixture
def deployment(make_app, redis_server, environment):
    """An app and a real worker on a private Redis that the test stops and starts."""
    app = make_app(REDIS_URL=redis_server.url)
    worker = Worker({**environment, "REDIS_URL": redis_server.url})
    try:
        yield app, worker.wait_ready(app.extensions["celery"])
    finally:
        worker.stop()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def start_job(client):
    return timed(lambda: client.post("/async_process/start", json={"steps": 2}))


@pytest.mark.parametrize("failure", ["refused", "hung"])
def test_broker_outage_and_recovery(deployment, redis_server, failure):
    app, worker = deployment
    client = app.test_client()
    response, _ = start_job(client)
    finished = wait_for_job(client, response.json["result_id"])["id"]

    redis_server.stop()
    outage = hanging_listener(redis_server.port) if failure == "hung" else nullcontext()
    with outage:
        lists = [timed(lambda: client.get("/api/v1/products")) for _ in range(REQUESTS)]
        slow = sum(seconds >= 1 for _, seconds in lists)
        worst = max(seconds for _, seconds in lists)
        median = sorted(seconds for _, seconds in lists)[REQUESTS // 2]
        print(f"FIGURE broker_{failure} product_list slow={slow}/{REQUESTS} "
              f"median_ms={median * 1000:.0f} worst_ms={worst * 1000:.0f}")
        assert [r.status_code for r, _ in lists] == [200] * REQUESTS and slow == 0

        refused, seconds = start_job(client)
        assert_error(refused, 503)
        assert seconds < 1
        assert [job.id for job in job_rows(app)] == [finished]

        assert client.get(f"/api/v1/jobs/{finished}").json["state"] == "SUCCESS"
        assert client.get(f"/async_process/{finished}").json["successful"] is True
        assert client.get("/api/v1/jobs").status_code == 200
        health, seconds = timed(lambda: client.get("/health"))
        assert health.status_code == 503 and seconds < 2
        assert {facts["length"] for facts in health.json["queues"].values()} == {None}

    redis_server.start()
    back = time.monotonic()
    accepted = wait_for(lambda: (answer := start_job(client)[0]).status_code == 202 and answer,
                        timeout=10, interval=0.2)
    job = wait_for_job(client, accepted.json["result_id"], timeout=30)
    recovery = time.monotonic() - back
    print(f"FIGURE broker_{failure} recovery_seconds={recovery:.1f} (job accepted and run)")
    assert job["state"] == "SUCCESS" and recovery < 10
    assert worker.process.poll() is None
    assert client.get("/health").json["queues"]["jobs"] == {"length": 0, "oldest_seconds": None}
