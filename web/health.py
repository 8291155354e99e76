"""GET /health: the database, the broker, the workers that answer, and what waits in each queue."""
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Blueprint, current_app
from flask.ctx import AppContext

from background.queues import NO_FACTS, queue_facts, queue_names
from models import db

bp = Blueprint("health", __name__)

# A worker answers a ping in milliseconds; this is how long replies are collected.
PING_SECONDS = 0.5
# Whatever hangs, /health answers within this (Heroku's router waits 30 s, a
# load balancer's health check often 2 s).
DEADLINE_SECONDS = 1.5
# Each check runs in a thread of its own pool, so that one that hangs cannot
# hold the request past the deadline, nor starve the other checks. A hung check
# keeps its thread until its own timeouts end it.
database_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-database")
broker_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-broker")
queue_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-queues")


def check_database(context: AppContext) -> str:
    """Run a trivial query."""
    with context:
        db.session.execute(db.select(1))
    return "ok"


def count_workers(context: AppContext) -> int:
    """Ping every worker through the broker; return how many answered."""
    with context:
        celery = current_app.extensions["celery"]
    # On a connection of its own, closed afterwards: a monitor polling /health
    # must not leave two more Redis connections open in every web process
    # (Heroku Key-Value Store mini allows 20 in all).
    with celery.connection_for_write() as connection:
        return len(celery.control.ping(timeout=PING_SECONDS, connection=connection))


def measure_queues(context: AppContext) -> dict[str, dict[str, Any]]:
    """Return each queue's length and the age of its oldest message."""
    with context:
        return queue_facts(current_app.extensions["celery"])


def answer(name: str, future: Future) -> Any:
    """Return what a check found, or None if it failed or is still running."""
    if future.cancel() or not future.done():
        current_app.logger.warning("Health check of the %s timed out", name)
        return None
    if future.exception() is not None:
        current_app.logger.warning("Health check of the %s failed: %s", name,
                                   type(future.exception()).__name__)
        return None
    return future.result()


@bp.get("/health")
def health():
    """Report the database, the broker, the number of workers answering and the queues."""
    # Each check runs in an app context of its own, pushed in its thread.
    futures = {"database": database_checks.submit(check_database, current_app.app_context()),
               "broker": broker_checks.submit(count_workers, current_app.app_context()),
               "queues": queue_checks.submit(measure_queues, current_app.app_context())}
    wait(futures.values(), timeout=DEADLINE_SECONDS)
    database, workers, queues = (answer(name, future) for name, future in futures.items())
    checks = {"database": "ok" if database else "unavailable",
              "broker": "unavailable" if workers is None else "ok",
              "workers": workers}
    if queues is None:
        queues = {name: NO_FACTS for name in queue_names(current_app.extensions["celery"])}
    headers = {"Cache-Control": "no-store"}
    failed = [name for name in ("database", "broker") if checks[name] != "ok"]
    if failed:
        return {"code": 503, "message": f"Unavailable: {', '.join(failed)}.",
                "status": "unavailable", "checks": checks, "queues": queues}, 503, headers
    return {"status": "ok" if workers else "degraded", "checks": checks,
            "queues": queues}, 200, headers
