"""The Celery exercise: make_celery, very_slow_add and the products list that never waits."""
import base64
import json
import logging
import time

import pytest

from tasks import very_slow_add
from tests.helpers import SHELL_EXPERIMENT, run_flask_shell, waiting
from tests.services import Worker, hanging_listener, refusing_port, silent_host, wait_for


def test_every_task_runs_inside_the_app_context(app):
    assert very_slow_add.apply(args=(2, 3)).get() == 5


def test_product_list_queues_very_slow_add_1_2_without_keeping_its_result(
    make_app, redis_server
):
    client = make_app(REDIS_URL=redis_server.url).test_client()

    assert client.get("/api/v1/products").status_code == 200

    (message,) = waiting(redis_server.url, "fire-and-forget")
    assert message["headers"]["task"] == "tasks.very_slow_add"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([1, 2], {})
    assert message["headers"]["ignore_result"] is True
    assert redis_server.client().pubsub_channels() == []


def test_product_list_leaves_no_connection_or_subscription_behind(make_app, redis_server):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    client.get("/api/v1/products")
    clients_after_first = len(redis_server.client().client_list())

    for _ in range(300):
        assert client.get("/api/v1/products").status_code == 200

    redis = redis_server.client()
    assert redis.llen("fire-and-forget") == 301
    assert len(redis.client_list()) <= clients_after_first
    assert redis.pubsub_channels() == [] and redis.pubsub_numpat() == 0


@pytest.mark.parametrize("broken_broker", [refusing_port, hanging_listener, silent_host])
def test_product_list_is_served_fast_when_the_broker_is_down(
    make_app, app, caplog, broken_broker
):
    with broken_broker() as port:
        client = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0").test_client()
        for _ in range(3):
            started = time.monotonic()
            response = client.get("/api/v1/products")
            assert time.monotonic() - started < 1
            assert response.status_code == 200
            assert response.json == []
    assert "Could not queue very_slow_add" in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING


def test_worker_runs_very_slow_add_end_to_end(worker):
    assert very_slow_add.delay(5, 7).get(timeout=20) == 12


def test_product_list_does_not_wait_for_a_busy_worker(app, environment):
    worker = Worker({**environment, "SLOW_ADD_SECONDS": "3"}, "--concurrency=1")
    try:
        worker.wait_ready(app.extensions["celery"])
        busy = very_slow_add.delay(5, 7)
        wait_for(lambda: f"very_slow_add[{busy.id}] received" in worker.output())

        started = time.monotonic()
        response = app.test_client().get("/api/v1/products")
        assert time.monotonic() - started < 1
        assert response.status_code == 200
        assert not busy.ready()

        assert busy.get(timeout=20) == 12
        wait_for(lambda: "succeeded in" in worker.output().split(busy.id)[-1], timeout=20)
    finally:
        worker.stop()


def test_flask_shell_experiment_with_redis(worker, environment):
    assert "RESULT 12" in run_flask_shell(environment, SHELL_EXPERIMENT)


def test_flask_shell_preloads_db_product_task_and_celery(environment):
    output = run_flask_shell(environment, "print('NAMES', db, Product, very_slow_add.name, celery.main)\n")
    assert "NAMES <SQLAlchemy" in output and "tasks.very_slow_add wsgi" in output


def test_flask_shell_experiment_on_the_embedded_default(tmp_path):
    environment = {
        "APP_ENV": "development", "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "",
        "REDIS_URL": "", "SLOW_ADD_SECONDS": "0.5",
    }
    worker = Worker(environment, "--concurrency=1")
    try:
        assert "RESULT 12" in run_flask_shell(environment, SHELL_EXPERIMENT)
    finally:
        worker.stop()
    assert (tmp_path / "celery" / "results").is_dir()
