"""A worker dyno stopped by Heroku (SIGTERM to every process, SIGKILL 30 s later) loses no task."""
import os
import signal

import pytest

from tests.helpers import procfile, wait_for_job
from tests.services import Worker, wait_for

# Heroku's grace period between SIGTERM and SIGKILL.
HEROKU_GRACE_SECONDS = 30


@pytest.fixture
def dyno(app, environment):
    """Start the Procfile's worker command, as a dyno would; stop what is left at the end."""
    started: list[Worker] = []

    def start(**changes: str) -> Worker:
        worker = Worker({**environment, **changes}, shell=procfile()["worker"])
        started.append(worker)
        return worker.wait_ready(app.extensions["celery"])

    yield start
    for worker in started:
        worker.stop()


def stop_like_heroku(worker: Worker) -> None:
    """Send SIGTERM to the worker's whole process group; wait for it to exit within the grace period."""
    os.killpg(worker.process.pid, signal.SIGTERM)
    wait_for(lambda: worker.process.poll() is not None, timeout=HEROKU_GRACE_SECONDS)


def start_process(client, steps: int) -> str:
    response = client.post("/async_process/start", json={"steps": steps})
    assert response.status_code == 202
    return response.json["result_id"]


def has_begun(client, job_id: str) -> bool:
    return client.get(f"/api/v1/jobs/{job_id}").json["state"] in ("STARTED", "PROGRESS")


def test_a_task_that_outlasts_the_grace_period_goes_back_to_the_queue(client, dyno):
    first = dyno(SOFT_SHUTDOWN_SECONDS="1", ASYNC_STEP_SECONDS="0.3")
    job_id = start_process(client, steps=15)
    wait_for(lambda: has_begun(client, job_id))

    stop_like_heroku(first)
    assert client.get(f"/api/v1/jobs/{job_id}").json["state"] != "SUCCESS"
    assert "Soft Shutdown" in first.output()

    dyno(ASYNC_STEP_SECONDS="0.05")
    job = wait_for_job(client, job_id)
    assert job["state"] == "SUCCESS" and job["result"] == {"steps": 15}


def test_a_task_that_ends_within_the_grace_period_finishes_on_the_stopping_worker(client, dyno):
    worker = dyno(SOFT_SHUTDOWN_SECONDS="5", ASYNC_STEP_SECONDS="0.3")
    job_id = start_process(client, steps=4)
    wait_for(lambda: has_begun(client, job_id))

    stop_like_heroku(worker)
    job = client.get(f"/api/v1/jobs/{job_id}").json
    assert job["state"] == "SUCCESS" and job["result"] == {"steps": 4}
