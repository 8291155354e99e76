"""Housekeeping: lost jobs end as failed, old rows go, and exactly one beat sends it."""
import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event

from background.housekeeping import housekeeping
from background.jobs import run_job
from background.models import STATES, AuditEvent, Job
from background.tasks import integrate
from config import ConfigError, from_env
from models import db, utcnow
from tests.conftest import DATABASES
from tests.helpers import add_job, job_rows, procfile, wait_for_job
from tests.services import ROOT, Beat, Worker, wait_for

DAY = timedelta(days=1)
STALE_SECONDS = 3


def add_audit_event(app, age: timedelta) -> None:
    with app.app_context():
        db.session.add(AuditEvent(key=uuid.uuid4().hex, action="update", product_id=1,
                                  method="PATCH", path="/api/v1/products/1",
                                  created_at=utcnow() - age))
        db.session.commit()


def audit_ages(app) -> list[int]:
    with app.app_context():
        return sorted((utcnow() - audit.created_at).days
                      for audit in db.session.execute(db.select(AuditEvent)).scalars())


def run_housekeeping(app, batch_size: int = 500) -> tuple[dict[str, int], list[str]]:
    """Run housekeeping in app; return its summary and the DELETE statements it ran."""
    statements = []

    def record(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            return housekeeping.run(batch_size=batch_size), statements
        finally:
            event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_housekeeping_deletes_what_is_past_its_retention_in_batches_and_keeps_the_rest(make_app):
    app = make_app(JOB_RETENTION_DAYS="30", AUDIT_RETENTION_DAYS="365", STALE_JOB_SECONDS="0")
    old, young = utcnow() - 31 * DAY, utcnow() - 29 * DAY
    expected = []
    for state in STATES:
        finished = state in ("SUCCESS", "FAILURE", "REVOKED")
        for when in (old, young):
            # Unfinished jobs are never deleted, however old.
            add_job(app, state, created_at=when, finished_at=when if finished else None)
            if not (finished and when is old):
                expected.append((state, when.date()))
    # Two more old finished jobs: five to delete, two per batch.
    for _ in range(2):
        add_job(app, "SUCCESS", created_at=old, finished_at=old)
    for days in (400, 366, 364, 1):
        add_audit_event(app, days * DAY)

    summary, deletes = run_housekeeping(app, batch_size=2)

    assert summary == {"jobs_deleted": 5, "audit_events_deleted": 2, "lost_jobs_failed": 0}
    assert sorted((job.state, job.created_at.date()) for job in job_rows(app)) == sorted(expected)
    assert audit_ages(app) == [1, 364]
    job_batches = [statement for statement in deletes if "FROM job" in statement]
    assert len(job_batches) == 3  # 2 + 2 + 1


def test_a_retention_of_zero_keeps_everything(make_app):
    app = make_app(JOB_RETENTION_DAYS="0", AUDIT_RETENTION_DAYS="0", STALE_JOB_SECONDS="0")
    add_job(app, "SUCCESS", created_at=utcnow() - 1000 * DAY, finished_at=utcnow() - 1000 * DAY)
    add_audit_event(app, 1000 * DAY)

    summary, deletes = run_housekeeping(app)

    assert summary == {"jobs_deleted": 0, "audit_events_deleted": 0, "lost_jobs_failed": 0}
    assert deletes == []
    assert len(job_rows(app)) == 1 and audit_ages(app) == [1000]


def row(app, job_id: str) -> Job:
    with app.app_context():
        return db.session.get(Job, job_id)


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_a_job_left_running_by_a_dead_worker_ends_as_failed_and_a_young_one_does_not(make_app):
    app = make_app(STALE_JOB_SECONDS="60")
    lost = add_job(app, "PROGRESS", started_at=utcnow() - timedelta(seconds=61),
                   progress_current=16, progress_total=30)
    lost_started = add_job(app, "STARTED", started_at=utcnow() - DAY)
    young = add_job(app, "PROGRESS", started_at=utcnow() - timedelta(seconds=50),
                    progress_current=1, progress_total=30)
    queued = add_job(app, "PENDING", created_at=utcnow() - DAY)

    summary, _ = run_housekeeping(app)

    assert summary["lost_jobs_failed"] == 2
    for job_id in (lost, lost_started):
        job = row(app, job_id)
        assert (job.state, job.error) == ("FAILURE", {
            "type": "WorkerLost", "message": "The worker running this job stopped before it finished."})
        assert job.finished_at is not None
    assert row(app, lost).progress == {"current": 16, "total": 30}
    assert row(app, young).state == "PROGRESS" and row(app, young).error is None
    assert row(app, queued).state == "PENDING"


def test_the_schedule_sends_housekeeping_every_housekeeping_seconds(make_app, tmp_path):
    app = make_app(HOUSEKEEPING_SECONDS="42", INSTANCE_PATH=str(tmp_path))
    celery = app.extensions["celery"]
    (entry,) = celery.conf.beat_schedule.values()
    assert entry["task"] == housekeeping.name == "background.housekeeping"
    assert entry["task"] in celery.tasks
    assert entry["schedule"] == 42 and entry["options"]["expires"] <= 42
    # In the instance folder, which the app creates, never in the repository.
    assert celery.conf.beat_schedule_filename == str(tmp_path / "celerybeat-schedule")
    assert tmp_path.is_dir()


def test_no_job_runs_or_waits_for_a_retry_as_long_as_the_stale_bound():
    # The longest wait before each retry, with full jitter: 2, 4, 8, ... capped at 60 s.
    retry_waits = sum(min(run_job.retry_backoff_max, run_job.retry_backoff * 2 ** attempt)
                      for attempt in range(run_job.max_retries))
    assert integrate.time_limit < run_job.time_limit
    assert run_job.time_limit + retry_waits < from_env({})["STALE_JOB_SECONDS"]


@pytest.mark.parametrize("variable, value", [
    ("HOUSEKEEPING_SECONDS", "0"), ("HOUSEKEEPING_SECONDS", "-5"), ("STALE_JOB_SECONDS", "soon"),
    ("JOB_RETENTION_DAYS", "-1"), ("AUDIT_RETENTION_DAYS", "inf"), ("AUDIT_RETENTION_DAYS", "nan"),
])
def test_a_bad_housekeeping_setting_is_refused_at_start_up_by_name(variable, value):
    with pytest.raises(ConfigError, match=variable):
        from_env({variable: value})


def test_beat_run_as_the_procfile_says_has_lost_jobs_failed_and_old_ones_deleted(
        environment, make_app, tmp_path):
    env = {**environment, "HOUSEKEEPING_SECONDS": "1", "STALE_JOB_SECONDS": str(STALE_SECONDS),
           "INSTANCE_PATH": str(tmp_path), "ASYNC_STEP_SECONDS": "0.3"}
    app = make_app(**env)
    client = app.test_client()
    app.extensions["celery"].control.purge()
    old = utcnow() - 100 * DAY
    expired = add_job(app, "SUCCESS", created_at=old, finished_at=old)
    leftovers = set(ROOT.glob("celerybeat-schedule*"))

    doomed = Worker(env).wait_ready(app.extensions["celery"])
    job_id = client.post("/async_process/start", json={"steps": 100}).json["result_id"]
    wait_for_job(client, job_id, states=("PROGRESS",))
    worker, beat = Worker(env), Beat(procfile()["beat"], env)
    try:
        worker.wait_ready(app.extensions["celery"])
        # Older than STALE_SECONDS by now, but its worker holds it.
        wait_for(lambda: "still held by a worker" in worker.output(), timeout=15)
        assert client.get(f"/api/v1/jobs/{job_id}").json["state"] == "PROGRESS"
        # Killed mid-job, as a crashed dyno or honcho's Ctrl-C would.
        os.killpg(doomed.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        job = wait_for_job(client, job_id, timeout=30)
        seconds = time.monotonic() - killed_at
        wait_for(lambda: expired not in [job.id for job in job_rows(app)], timeout=10)
    finally:
        status = beat.stop()
        worker.stop()
        doomed.stop()
    # At most the job's remaining time to STALE_SECONDS, plus HOUSEKEEPING_SECONDS,
    # plus the second that housekeeping gives the workers to answer.
    print(f"FIGURE lost_job_failed_after_seconds={seconds:.1f} (job older than "
          f"STALE_JOB_SECONDS={STALE_SECONDS} when its worker was SIGKILLed; HOUSEKEEPING_SECONDS=1)")
    assert job["state"] == "FAILURE" and job["error"]["type"] == "WorkerLost"
    assert job["progress"]["current"] < 100
    assert "Sending due task housekeeping (background.housekeeping)" in beat.output()
    assert "ended 1 lost jobs as failed" in worker.output()
    assert status == 0, beat.output()
    assert list(tmp_path.glob("celerybeat-schedule*"))
    assert set(ROOT.glob("celerybeat-schedule*")) == leftovers
