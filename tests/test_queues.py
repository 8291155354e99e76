"""Queues by purpose: a backlog of demo tasks delays no job, and a stale demo task is dropped."""
import time
from datetime import datetime

import pytest

from config import QUEUES
from tasks import very_slow_add
from tests.helpers import wait_for_job, waiting
from tests.services import Worker, wait_for

# As many demo tasks as 300 product listings queue: with the default queue
# alone, a job started after them waited for all of them (150 s here).
BACKLOG = 300
DEMO_SECONDS = 1
# A job overtakes the backlog: it waits for at most a few demo tasks, however
# long the backlog, then runs (one step of 0.1 s).
BOUND_SECONDS = 4 * DEMO_SECONDS + 2


@pytest.fixture
def environment(environment: dict[str, str]) -> dict[str, str]:
    return {**environment, "SLOW_ADD_SECONDS": str(DEMO_SECONDS)}


@pytest.fixture
def backlog(app, client, worker, environment):
    """A worker with hundreds of demo tasks queued, as hundreds of product listings leave it."""
    for _ in range(BACKLOG):
        assert client.get("/api/v1/products").status_code == 200
    yield
    app.extensions["celery"].control.purge()


def test_a_job_overtakes_hundreds_of_demo_tasks(client, environment, backlog):
    started = time.monotonic()
    response = client.post("/async_process/start", json={"steps": 1})
    assert response.status_code == 202

    job = wait_for_job(client, response.json["result_id"], timeout=BOUND_SECONDS)
    seconds = time.monotonic() - started
    left = len(waiting(environment["REDIS_URL"], "fire-and-forget"))
    print(f"FIGURE job_behind_backlog seconds={seconds:.2f} demo_tasks_left={left}/{BACKLOG}")
    assert job["state"] == "SUCCESS"
    assert left > BACKLOG // 2


def test_the_shell_experiment_overtakes_hundreds_of_demo_tasks(environment, backlog):
    started = time.monotonic()
    assert very_slow_add.delay(5, 7).get(timeout=BOUND_SECONDS) == 12
    seconds = time.monotonic() - started
    left = len(waiting(environment["REDIS_URL"], "fire-and-forget"))
    print(f"FIGURE shell_behind_backlog seconds={seconds:.2f} demo_tasks_left={left}/{BACKLOG}")
    assert left > BACKLOG // 2


@pytest.mark.parametrize(("call", "queue"), [
    (lambda client: client.get("/api/v1/products"), "fire-and-forget"),
    (lambda client: client.post("/async_process/start", json={"steps": 1}), "jobs"),
    (lambda client: client.get("/api/v1/add/2/3"), "jobs"),
    (lambda client: very_slow_add.delay(5, 7), "celery"),
], ids=["product list", "async process", "add", "shell experiment"])
def test_each_task_goes_to_the_queue_of_its_purpose(make_app, redis_server, call, queue):
    app = make_app(REDIS_URL=redis_server.url)
    with app.app_context():
        call(app.test_client())
    assert {name: len(waiting(redis_server.url, name)) for name in QUEUES} == {
        name: int(name == queue) for name in QUEUES}


def test_the_product_lists_demo_task_expires(make_app, redis_server):
    client = make_app(REDIS_URL=redis_server.url, SLOW_ADD_EXPIRES="45").test_client()
    before = time.time()
    client.get("/api/v1/products")
    after = time.time()
    (message,) = waiting(redis_server.url, "fire-and-forget")
    expires = datetime.fromisoformat(message["headers"]["expires"]).timestamp()
    assert before + 45 <= expires <= after + 45


def test_a_demo_task_past_its_expiry_is_dropped_not_run(make_app, redis_server, environment):
    environment = {**environment, "REDIS_URL": redis_server.url}
    make_app(REDIS_URL=redis_server.url, SLOW_ADD_EXPIRES="0.2").test_client().get("/api/v1/products")
    (stale,) = waiting(redis_server.url, "fire-and-forget")
    expires = datetime.fromisoformat(stale["headers"]["expires"])
    wait_for(lambda: datetime.now(expires.tzinfo) > expires)
    app = make_app(REDIS_URL=redis_server.url)
    app.test_client().get("/api/v1/products")
    fresh = waiting(redis_server.url, "fire-and-forget")[0]

    worker = Worker(environment)
    try:
        worker.wait_ready(app.extensions["celery"])
        # Taken after the stale one, from the same queue.
        wait_for(lambda: f"very_slow_add[{fresh['headers']['id']}] succeeded" in worker.output(),
                 timeout=20)
    finally:
        worker.stop()
    stale_id = stale["headers"]["id"]
    assert f"Discarding revoked task: tasks.very_slow_add[{stale_id}]" in worker.output()
    assert f"very_slow_add[{stale_id}] succeeded" not in worker.output()
