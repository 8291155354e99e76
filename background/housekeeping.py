"""Housekeeping, sent by Celery beat every HOUSEKEEPING_SECONDS: lost jobs, old rows.

A job whose worker died (SIGKILL, a crashed dyno) would say STARTED or
PROGRESS for ever: housekeeping ends it as FAILURE once it is older than any
job can run and no worker holds it. Finished jobs and audit events are deleted
after their retention, a batch at a time, so that no table is locked for long.
"""
import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import ColumnElement, delete
from sqlalchemy.orm import InstrumentedAttribute

from background.jobs import mark_lost
from background.models import FINISHED, RUNNING, AuditEvent, Job
from models import db, utcnow

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# How long the workers have to say which jobs they hold. A worker that is
# slower than this cannot lose its jobs: they are younger than STALE_JOB_SECONDS.
INSPECT_SECONDS = 1.0
DAY = 24 * 3600


@shared_task(name="background.housekeeping", ignore_result=True)
def housekeeping(batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """End lost jobs as failed, and delete finished jobs and audit events past their retention."""
    config = current_app.config
    summary = {
        "jobs_deleted": delete_older(Job.finished_at, config["JOB_RETENTION_DAYS"] * DAY,
                                     batch_size, Job.state.in_(FINISHED)),
        "audit_events_deleted": delete_older(AuditEvent.created_at,
                                             config["AUDIT_RETENTION_DAYS"] * DAY, batch_size),
        "lost_jobs_failed": fail_lost_jobs(config["STALE_JOB_SECONDS"], batch_size),
    }
    logger.info("Housekeeping: deleted %(jobs_deleted)d jobs and %(audit_events_deleted)d audit "
                "events, ended %(lost_jobs_failed)d lost jobs as failed", summary)
    return summary


def delete_older(column: InstrumentedAttribute, seconds: float, batch_size: int,
                 *conditions: ColumnElement[bool]) -> int:
    """Delete the rows whose column is more than seconds old, batch_size per transaction; 0 s keeps all."""
    if not seconds:
        return 0
    model = column.class_
    old = column < utcnow() - timedelta(seconds=seconds)
    deleted = 0
    while True:
        # DELETE ... WHERE id IN (SELECT id ... LIMIT n): both databases take
        # it, and each transaction holds its locks only for one batch.
        batch = db.select(model.id).where(old, *conditions).limit(batch_size)
        count = db.session.execute(
            delete(model).where(model.id.in_(batch)).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        deleted += count
        if count < batch_size:
            return deleted


def fail_lost_jobs(seconds: float, batch_size: int) -> int:
    """End as failed the jobs running for more than seconds that no worker holds; 0 s checks none."""
    if not seconds:
        return 0
    running_since = utcnow() - timedelta(seconds=seconds)
    candidates = db.session.execute(
        db.select(Job.id).where(Job.state.in_(RUNNING), Job.started_at < running_since)
        .order_by(Job.started_at).limit(batch_size)
    ).scalars().all()
    if not candidates:
        return 0
    # Asked only when there are candidates, since every answer takes INSPECT_SECONDS.
    held = held_by_workers(candidates)
    lost = [job_id for job_id in candidates if job_id not in held]
    if held:
        logger.warning("Jobs running for over %s s, still held by a worker: %s", seconds,
                       ", ".join(sorted(held)))
    failed = mark_lost(lost, running_since) if lost else 0
    if failed:
        logger.warning("Ended %d jobs whose worker stopped before they finished: %s", failed,
                       ", ".join(lost))
    return failed


def held_by_workers(job_ids: Sequence[str]) -> set[str]:
    """Return which of job_ids a worker that answers in time is running or has taken to run.

    A job's id is its run_job task's id. query_task finds tasks running or
    waiting in a worker, not those waiting for a retry's countdown: those are
    at most two minutes from their last start, well inside the age bound.
    """
    inspect = current_app.extensions["celery"].control.inspect(timeout=INSPECT_SECONDS)
    replies = inspect.query_task(*job_ids) or {}
    return {job_id for tasks in replies.values() for job_id in tasks}
