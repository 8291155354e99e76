"""Redis dies (SIGKILL or SIGTERM) at any moment of a worker's life and comes back: the worker carries on.

The worker runs the command of the Procfile, then of Procfile.dev. Redis is killed while the worker is
idle, while a task runs, just as a task finishes (when the worker acknowledges
it), and again while the worker reconnects; each time it comes back on the
same port, and the same worker must still be there and run a new job. The
test Redis keeps nothing on disk, so a message the worker had taken when Redis
died is gone with it: only jobs started after Redis is back are checked.
"""
import signal
import time
from typing import NamedTuple

import pytest

from tests.helpers import procfile, wait_for_job
from tests.services import Worker, wait_for

STEP_SECONDS = 0.1
# A running task outlives the outage and the worker's reconnection; a
# finishing one is killed on its last step, a little before or after its end.
RUNNING_STEPS, FINISHING_STEPS = 40, 3
RECOVERY_SECONDS = 45


class Death(NamedTuple):
    moment: str
    signal: signal.Signals
    # Deliberate, staggered delays (not synchronisation): from the moment
    # reached to the kill, and from Redis's return to a second kill
    # (None: Redis stays up).
    delay: float
    again_after: float | None = None


DEATHS = [
    Death("idle", signal.SIGKILL, 0),
    Death("running", signal.SIGKILL, 0.1),
    Death("finishing", signal.SIGKILL, 0.05),
    Death("finishing", signal.SIGTERM, 0.1),
    Death("running", signal.SIGTERM, 0.3),
    Death("finishing", signal.SIGKILL, 0.15),
    Death("idle", signal.SIGTERM, 0.2, again_after=0.05),
    Death("finishing", signal.SIGKILL, 0.08, again_after=0.3),
    Death("running", signal.SIGKILL, 0.2, again_after=1),
]


@pytest.fixture(params=["Procfile", "Procfile.dev"])
def dyno(request, app, environment, redis_server):
    """A worker started with a Procfile's command, on the private Redis the test kills."""
    worker = Worker({**environment, "ASYNC_STEP_SECONDS": str(STEP_SECONDS),
                     "SOFT_SHUTDOWN_SECONDS": "1"},
                    shell=procfile(request.param)["worker"])
    try:
        yield worker.wait_ready(app.extensions["celery"])
    finally:
        worker.stop()


def start_job(client, steps: int) -> str:
    """Start a job once the web process reaches Redis again; return its id."""
    accepted = wait_for(
        lambda: (answer := client.post("/async_process/start", json={"steps": steps}))
        .status_code == 202 and answer,
        timeout=15, interval=0.2,
    )
    return accepted.json["result_id"]


def finished(client, job_id: str) -> dict | None:
    """Return the job once it has finished, or None if it has not within RECOVERY_SECONDS."""
    try:
        return wait_for_job(client, job_id, timeout=RECOVERY_SECONDS)
    except TimeoutError:
        return None


def reach(client, moment: str) -> str | None:
    """Bring the worker to moment: idle, running a long job, or on a short job's last step.

    Return the id of the job it runs, if any.
    """
    if moment == "idle":
        return None
    steps = RUNNING_STEPS if moment == "running" else FINISHING_STEPS
    job_id = start_job(client, steps)
    wait_for_job(client, job_id, states=("PROGRESS", "SUCCESS"), timeout=RECOVERY_SECONDS)
    if moment == "finishing":
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json["progress"]["current"]
                 >= steps - 1, timeout=10, interval=0.01)
    return job_id


def kill(redis_server, death: Death) -> None:
    """Kill Redis as death says, and bring it back on the same port."""
    time.sleep(death.delay)
    redis_server.stop(death.signal)
    redis_server.start()
    if death.again_after is not None:
        time.sleep(death.again_after)
        redis_server.stop(death.signal)
        redis_server.start()


def test_worker_survives_redis_dying_at_any_moment(app, dyno, redis_server):
    client = app.test_client()
    started = time.monotonic()
    for number, death in enumerate(DEATHS, 1):
        running = reach(client, death.moment)
        kill(redis_server, death)

        job = finished(client, start_job(client, 1))
        if running:
            # The task Redis died under runs on (its progress is in the
            # database), and acknowledges its message on the lost connection
            # when it ends: that too must not bring the worker down.
            finished(client, running)

        log = dyno.output()
        round_ = f"round {number}, {death}"
        assert dyno.process.poll() is None, f"{round_}: the worker exited\n{log[-4000:]}"
        assert "Unrecoverable error" not in log, f"{round_}\n{log[-4000:]}"
        assert job and job["state"] == "SUCCESS", f"{round_}: {job}\n{log[-4000:]}"
    print(f"FIGURE broker_death rounds={len(DEATHS)} seconds={time.monotonic() - started:.1f}")
