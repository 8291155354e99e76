"""A database error that passes is retried; any other error, or one that outlasts the retries, fails the job."""
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from celery import shared_task
from sqlalchemy import text
from sqlalchemy.engine import make_url

from background.jobs import run_job
from background.models import AuditEvent, Job
from models import db
from tests.conftest import DATABASES
from tests.helpers import add_job, wait_for_job
from tests.services import Worker, wait_for

CALLS: list[int] = []
# A statement that fails with the database's OperationalError, the error
# retried, as a lost connection or a lock that was held too long would.
FAILING_STATEMENT = {
    "postgresql": "SELECT pg_sleep(1)",  # cancelled after DATABASE_STATEMENT_TIMEOUT
    "sqlite": "SELECT * FROM no_such_table",
}
FAILURE_MESSAGE = {
    "postgresql": "canceling statement due to statement timeout",
    "sqlite": "no such table: no_such_table",
}


@shared_task(name="tests.test_retries.failing")
def failing(transient_failures: int, permanent: bool = False) -> str:
    """Fail the first transient_failures calls with a database error (or every call with another)."""
    CALLS.append(len(CALLS))
    if permanent:
        raise ValueError("not a number")
    if len(CALLS) <= transient_failures:
        db.session.execute(text(FAILING_STATEMENT[db.engine.dialect.name]))
    return "done"


@pytest.fixture
def jobs_app(make_app):
    return make_app(DATABASE_STATEMENT_TIMEOUT="0.1")


def run_failing_job(app, *args) -> Job:
    """Run failing(*args) as a job, here and now, retries included; return its row."""
    CALLS.clear()
    job_id = add_job(app, "PENDING")
    # apply() runs a retry at once, rather than after its countdown.
    run_job.apply((failing.name, list(args), {}), task_id=job_id)
    with app.app_context():
        return db.session.get(Job, job_id)


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_a_transient_database_error_is_retried_and_the_job_succeeds(jobs_app):
    job = run_failing_job(jobs_app, 2)
    assert len(CALLS) == 3
    assert (job.state, job.result, job.error) == ("SUCCESS", "done", None)


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_a_transient_error_that_outlasts_the_retries_fails_the_job_with_its_error(jobs_app):
    job = run_failing_job(jobs_app, 100)
    assert len(CALLS) == 1 + run_job.max_retries
    with jobs_app.app_context():
        dialect = db.engine.dialect.name
    assert (job.state, job.error) == ("FAILURE", {"type": "OperationalError",
                                                  "message": FAILURE_MESSAGE[dialect]})


def test_any_other_error_fails_the_job_at_once_with_its_error(jobs_app):
    job = run_failing_job(jobs_app, 0, True)
    assert len(CALLS) == 1
    assert (job.state, job.error) == ("FAILURE", {"type": "ValueError", "message": "not a number"})


@contextmanager
def writes_blocked(database_url: str, tables: tuple[str, ...]) -> Iterator[None]:
    """Hold locks that make every write to tables wait, as a busy or failing-over database would."""
    if database_url.startswith("sqlite"):
        # One writer at a time: this transaction is it.
        connection = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    else:
        connection = psycopg.connect(database_url)
        # EXCLUSIVE lets others read and makes their writes wait.
        connection.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        connection.rollback()
        connection.close()


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_jobs_and_audit_events_wait_out_a_database_that_fails_for_a_moment(
        app, client, auth, environment, database_url):
    app.extensions["celery"].control.purge()
    # Queued while no worker runs: an audit event, and a job.
    assert client.post("/api/v1/products", json={"name": "Lamp"}, headers=auth).status_code == 201
    job_id = client.post("/async_process/start", json={"steps": 2}).json["result_id"]

    # The worker's statements give up on a lock after 0.3 s, and so fail
    # until the locks go.
    worker_environment = {**environment, "DATABASE_STATEMENT_TIMEOUT": "0.3"}
    with writes_blocked(database_url, ("job", "audit_event")):
        worker = Worker(worker_environment)
        try:
            wait_for(lambda: both_retried(worker.output()) or worker.process.poll() is not None,
                     timeout=30)
        except BaseException:
            worker.stop()
            raise
    released_at = time.monotonic()
    try:
        job = wait_for_job(client, job_id)
        wait_for(lambda: audit_event_count(app) == 1)
        seconds = time.monotonic() - released_at
    finally:
        worker.stop()
    retries = worker.output().count("retry: Retry in")
    print(f"FIGURE database_blocked retries={retries} done_after_release_seconds={seconds:.1f} "
          f"({database_url.split(':')[0]}, DATABASE_STATEMENT_TIMEOUT=0.3)")
    assert both_retried(worker.output())
    assert (job["state"], job["result"]) == ("SUCCESS", {"steps": 2})


def both_retried(log: str) -> bool:
    return all(re.search(rf"{name}\[[^]]+\] retry: Retry in", log)
               for name in ("background.run_job", "background.audit.store_audit_event"))


def audit_event_count(app) -> int:
    with app.app_context():
        return db.session.query(AuditEvent).count()
