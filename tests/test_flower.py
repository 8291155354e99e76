"""Flower, as `pipenv run flower` starts it, follows the Procfile's worker: online, and each task to its result."""
import tomllib
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from benchmarks.processes import sockets_to
from tests.helpers import procfile
from tests.services import ROOT, Flower, Worker, wait_for

FLOWER_COMMAND = tomllib.loads((ROOT / "Pipfile").read_text())["scripts"]["flower"]
# Measured: 3 (docs/heroku.md, "Connections"); 21 with Celery's default pool.
FLOWER_CONNECTIONS = 4


@pytest.fixture
def flower(environment: dict[str, str]) -> Iterator[Flower]:
    process = Flower(FLOWER_COMMAND, environment)
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture
def dyno(app, environment: dict[str, str], flower: Flower) -> Iterator[Worker]:
    """The Procfile's worker, once Flower hears its heartbeat."""
    app.extensions["celery"].control.purge()
    worker = Worker(environment, shell=procfile()["worker"])
    try:
        worker.wait_ready(app.extensions["celery"])
        # Heard once, Flower is listening: no event of the task below is lost.
        wait_for(lambda: flower.sees_online(worker.name), timeout=20, interval=0.1)
        yield worker
    finally:
        worker.stop()


def test_flower_follows_a_task_from_its_publisher_to_its_result(app, flower, dyno):
    # The result reaches Flower in the worker's event, kept by the backend or not.
    job = app.extensions["celery"].tasks["tasks.very_slow_add"].apply_async((5, 7), ignore_result=True)

    def succeeded() -> dict | None:
        task = flower.get(f"/api/task/info/{job.id}")[1]
        return task if isinstance(task, dict) and task.get("state") == "SUCCESS" else None

    task = wait_for(succeeded, timeout=20, interval=0.1)
    assert task["result"] == "12" and task["worker"] == dyno.name
    # The publisher's own event (task_send_sent_event). It goes out just after
    # the task's message, so the worker may start the task before it is sent.
    assert task["sent"] is not None, task
    assert task["received"] <= task["started"] <= task["succeeded"]


def test_flower_answers_nobody_without_its_password(flower):
    assert flower.get("/api/workers?status=true", password="wrong")[0] == 401
    assert flower.get("/api/workers?status=true")[0] == 200


def test_flower_holds_few_redis_connections(environment, flower, dyno):
    assert flower.get("/api/workers?refresh=true")[0] == 200  # asks the workers everything
    held = len(sockets_to([flower.process.pid], urlsplit(environment["REDIS_URL"]).port))
    print(f"FIGURE flower_redis_connections={held}")
    assert held <= FLOWER_CONNECTIONS
