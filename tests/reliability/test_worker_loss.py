"""Workers die mid-task (SIGKILL, SIGTERM): a fresh worker finishes every job, none is lost.

A worker stopped with SIGTERM hands its running tasks back at once (soft
shutdown, see tests/test_shutdown.py). One killed with SIGKILL cannot: Redis
hands its unacknowledged messages to another worker once the visibility
timeout has passed, one hour in production (longer than any task), a few
seconds here (VISIBILITY_TIMEOUT), with tasks kept shorter than that.
"""
import os
import signal
import time

import pytest

from tests.helpers import job_rows, procfile
from tests.services import Worker, wait_for

JOBS = 10
VISIBILITY_SECONDS = 6
# Each job takes about 2 s: well under the visibility timeout, as the README requires.
STEPS, STEP_SECONDS = 10, 0.2


@pytest.fixture
def dyno_environment(environment, redis_server):
    return {**environment, "REDIS_URL": redis_server.url, "SOFT_SHUTDOWN_SECONDS": "1",
            "VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS), "ASYNC_STEP_SECONDS": str(STEP_SECONDS)}


@pytest.fixture
def dynos(make_app, dyno_environment):
    """Start workers with the Procfile's command; stop what is left at the end."""
    app = make_app(**dyno_environment)
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(dyno_environment, shell=procfile()["worker"])
        started.append(worker)
        return worker.wait_ready(app.extensions["celery"])

    yield app, start
    for worker in started:
        worker.stop()


def states(app) -> list[str]:
    return [job.state for job in job_rows(app)]


def test_no_job_is_lost_when_workers_are_killed_or_stopped_mid_task(dynos):
    app, start = dynos
    killed, stopped = start(), start()
    client = app.test_client()
    for _ in range(JOBS):
        assert client.post("/async_process/start", json={"steps": STEPS}).status_code == 202
    # Both workers are busy: each runs two tasks at once.
    wait_for(lambda: sum(s in ("STARTED", "PROGRESS") for s in states(app)) >= 4, timeout=20)

    lost_at = time.monotonic()
    os.killpg(killed.process.pid, signal.SIGKILL)
    os.killpg(stopped.process.pid, signal.SIGTERM)
    wait_for(lambda: stopped.process.poll() is not None, timeout=30)
    assert states(app).count("SUCCESS") < JOBS

    start()
    wait_for(lambda: states(app).count("SUCCESS") == JOBS, timeout=90, interval=0.2)
    print(f"FIGURE worker_loss jobs={JOBS} lost=0 all_done_seconds={time.monotonic() - lost_at:.1f} "
          f"(visibility timeout {VISIBILITY_SECONDS} s)")
    assert [job.result for job in job_rows(app)] == [{"steps": STEPS}] * JOBS
