"""A worker dyno stopped by Heroku (SIGTERM to every process, SIGKILL 30 s later) loses no task.

A worker stopped any other way, however often, is gone as soon.
"""
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from config import SOFT_SHUTDOWN_SECONDS
from tests.helpers import procfile, wait_for_job
from tests.services import Worker, wait_for

# Heroku's grace period between SIGTERM and SIGKILL.
HEROKU_GRACE_SECONDS = 30
# What a stopping worker may take beyond its soft shutdown: the room config.py
# leaves before Heroku's SIGKILL to hand tasks back.
SHUTDOWN_ROOM = HEROKU_GRACE_SECONDS - SOFT_SHUTDOWN_SECONDS
# Shorter than config's, to keep the test quick. The bound still covers
# billiard's wait for the task of a pool process that died (worker_lost_wait, 10 s).
TEST_SOFT_SHUTDOWN_SECONDS = 10
SHUTDOWN_BOUND = TEST_SOFT_SHUTDOWN_SECONDS + SHUTDOWN_ROOM
SIGNAL_INTERVAL = 0.5
REPEATED_SIGTERM = [signal.SIGTERM] * int(SHUTDOWN_BOUND / SIGNAL_INTERVAL)

# How workers get stopped: signals to the worker's process group, one every
# SIGNAL_INTERVAL. GNU timeout and honcho send SIGTERM to the whole group, a
# terminal sends it Ctrl-C, and whoever sees no exit sends again. `pipenv run`,
# honcho and bash exec the command, so the worker leads its group, as here.
# Each way: the Procfile whose worker command runs, whether a task runs, the signals.
WAYS = {
    "Procfile.dev, idle, SIGTERM": ("Procfile.dev", False, [signal.SIGTERM]),
    "Procfile.dev, idle, SIGTERM twice a second": ("Procfile.dev", False, REPEATED_SIGTERM),
    "Procfile.dev, mid-task, SIGTERM twice a second": ("Procfile.dev", True, REPEATED_SIGTERM),
    "Procfile.dev, mid-task, Ctrl-C twice": ("Procfile.dev", True, [signal.SIGINT] * 2),
    "Procfile, idle, SIGTERM twice a second": ("Procfile", False, REPEATED_SIGTERM),
    "Procfile, mid-task, SIGTERM twice a second": ("Procfile", True, REPEATED_SIGTERM),
}


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


@pytest.fixture(params=["embedded", "redis"])
def own_broker(request, tmp_path) -> Callable[[int], dict[str, str]]:
    """Give worker number i a broker of its own, so that a task runs on the worker it was sent to."""
    if request.param == "redis":
        port = request.getfixturevalue("redis_server").port
        return lambda i: {"REDIS_URL": f"redis://127.0.0.1:{port}/{i}"}
    return lambda i: {"REDIS_URL": "", "INSTANCE_PATH": str(tmp_path / f"worker{i}")}


@pytest.fixture
def workers(environment) -> Iterator[Callable[..., Worker]]:
    """Start a Procfile's worker command in a process group of its own; kill what is left at the end."""
    started: list[Worker] = []

    def start(name: str, **changes: str) -> Worker:
        started.append(Worker({**environment, **changes}, shell=procfile(name)["worker"]))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()


def stop_all(ways: dict[str, tuple[Worker, list[signal.Signals]]], bound: float) -> dict[str, float]:
    """Send each worker's process group its signals, all at once; return when each exited."""
    start = time.monotonic()
    sent = dict.fromkeys(ways, 0)
    gone: dict[str, float] = {}
    while len(gone) < len(ways) and time.monotonic() - start < bound:
        elapsed = time.monotonic() - start
        for way, (worker, signals) in ways.items():
            if way in gone:
                continue
            if worker.process.poll() is not None:
                gone[way] = elapsed
            elif sent[way] < len(signals) and sent[way] * SIGNAL_INTERVAL <= elapsed:
                os.killpg(worker.process.pid, signals[sent[way]])
                sent[way] += 1
        time.sleep(0.05)
    return gone


def test_a_worker_exits_within_the_soft_shutdown_bound_however_it_is_stopped(request, own_broker,
                                                                            make_app, workers):
    started, clients, jobs = {}, {}, {}
    for i, (way, (name, busy, _)) in enumerate(WAYS.items()):
        changes = {**own_broker(i), "SOFT_SHUTDOWN_SECONDS": str(TEST_SOFT_SHUTDOWN_SECONDS),
                   "ASYNC_STEP_SECONDS": "0.3"}
        started[way] = workers(name, **changes)
        clients[way] = make_app(**changes).test_client()
        if busy:
            # Sent now, as a shared task goes through the Celery app made last: a
            # job longer than the bound, that the worker must cut short in time.
            jobs[way] = start_process(clients[way], steps=100)
    for way, worker in started.items():
        worker.wait_ready(clients[way].application.extensions["celery"])
    for way, job_id in jobs.items():
        wait_for(lambda: has_begun(clients[way], job_id))

    gone = stop_all({way: (started[way], WAYS[way][2]) for way in WAYS}, SHUTDOWN_BOUND)
    print(f"FIGURE worker_stopped broker={request.node.callspec.params['own_broker']} "
          + ", ".join(f"{way}: {seconds:.1f} s" for way, seconds in gone.items()))
    assert set(gone) == set(WAYS), f"still running after {SHUTDOWN_BOUND} s: {set(WAYS) - set(gone)}"
