"""The life of a job: its row is written when it starts, and kept current by the worker.

Any task can run as a job: start_job records the row, then queues run_job,
which runs the task in the worker under the job's id and records how it went.
The task itself knows nothing of jobs.
"""
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy.exc
from celery import Task, shared_task
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import update

from background.models import (ERROR_MESSAGE_LENGTH, ERROR_TYPE_LENGTH, JOB_NAME_LENGTH, RUNNING,
                               UNFINISHED, Job, clip)
from models import User, db, utcnow

logger = logging.getLogger(__name__)

# Every job is stopped after these many seconds, unless its task sets limits
# of its own (integrate's are shorter): the soft limit raises in the task, so
# the job fails with that error; the hard one kills a task that ignored it.
# A bound on every job is what lets housekeeping tell a lost job from a slow one.
JOB_SOFT_TIME_LIMIT = 300
JOB_TIME_LIMIT = 330
# Errors that a moment later may be gone: a connection lost or refused, a
# statement that waited too long for a lock, a deadlock, "database is locked"
# on SQLite. A task that meets one runs again after a random wait of up to
# 2 s, then 4, 8, ... 60 s, six times: at most two minutes in all, one on
# average (https://docs.celeryq.dev/en/stable/userguide/tasks.html#automatic-retry-for-known-exceptions).
# Any other error is final at once.
RETRY_ON_DATABASE_ERRORS = {
    "autoretry_for": (sqlalchemy.exc.OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 6,
}
WORKER_LOST = ("WorkerLost", "The worker running this job stopped before it finished.")


class QueueUnavailable(Exception):
    """The broker could not take a job; nothing was recorded."""


def new_job(name: str, parameters: dict[str, Any], owner: User | None = None,
            polling_url: str | None = None, job_id: str | None = None) -> Job:
    """Return a job row, not yet stored, for a task about to be queued."""
    return Job(id=job_id or str(uuid.uuid4()), name=clip(name, JOB_NAME_LENGTH),
               parameters=parameters, owner=owner, polling_url=polling_url, state="PENDING",
               created_at=utcnow())


def queue(job: Job, task: Task, args: Sequence[Any] = (), kwargs: dict | None = None) -> Job:
    """Queue task for a job row already committed; remove the row if the broker fails.

    The row is committed first so that the worker always finds it. The result
    lives in the row, so Celery's result backend is not used (ignore_result).
    A task with no time limits of its own gets run_job's.
    """
    try:
        run_job.apply_async((task.name, list(args), kwargs or {}), task_id=job.id,
                            ignore_result=True, time_limit=task.time_limit,
                            soft_time_limit=task.soft_time_limit)
    except OperationalError as error:
        logger.warning("Could not queue job %s (%s): %s", job.id, job.name, error)
        db.session.execute(db.delete(Job).where(Job.id == job.id))
        db.session.commit()
        raise QueueUnavailable from error
    return job


def start_job(task: Task, args: Sequence[Any] = (), kwargs: dict | None = None, *, name: str,
              parameters: dict[str, Any], owner: User | None = None) -> Job:
    """Record a job and queue task for it; raise QueueUnavailable if the broker is down."""
    job = new_job(name, parameters, owner)
    db.session.add(job)
    db.session.flush()
    # Detached, the job keeps the values just written: the commit expires
    # every object in the session, and reading one after it costs a SELECT
    # of the whole row (10 to 28 % of a job start), for values known here.
    db.session.expunge(job)
    db.session.commit()
    return queue(job, task, args, kwargs)


@shared_task(bind=True, name="background.run_job", soft_time_limit=JOB_SOFT_TIME_LIMIT,
             time_limit=JOB_TIME_LIMIT, **RETRY_ON_DATABASE_ERRORS)
def run_job(self: Task, task_name: str, args: list, kwargs: dict) -> None:
    """Run the task named task_name for the job with this task's id, keeping the job's row current.

    A transient database error runs the whole job again (tasks are idempotent);
    the row says FAILURE only once no attempt is left, so that a retry is never
    skipped as a finished job.
    """
    job_id = self.request.id
    try:
        if not mark_started(job_id):
            logger.info("Job %s was cancelled or removed, or has ended; not running it.", job_id)
            return
        task = current_app.extensions["celery"].tasks[task_name]
        # apply() runs the task here and now, under the job's id, so that a
        # task reporting progress finds its row by self.request.id.
        result = task.apply(args, kwargs, task_id=job_id, throw=True).result
        mark_succeeded(job_id, result)
    except Exception as error:
        if not will_retry(self, error):
            # A failed statement leaves PostgreSQL's transaction unusable.
            db.session.rollback()
            mark_failed(job_id, error)
        raise


def will_retry(task: Task, error: Exception) -> bool:
    """Tell whether Celery will run task again after error (its autoretry_for and max_retries)."""
    return isinstance(error, task.autoretry_for) and task.request.retries < task.max_retries


def set_state(job_id: str, allowed_from: Sequence[str], **values: Any) -> bool:
    """Update a job whose state is one of allowed_from; tell whether it was."""
    result = db.session.execute(
        update(Job).where(Job.id == job_id, Job.state.in_(allowed_from)).values(**values)
    )
    db.session.commit()
    return result.rowcount == 1


def mark_started(job_id: str) -> bool:
    """Record that the worker began the job; False if it was cancelled or removed."""
    return set_state(job_id, UNFINISHED, state="STARTED", started_at=utcnow())


def report_progress(job_id: str, current: int, total: int) -> None:
    """Record how far the job has got."""
    set_state(job_id, RUNNING, state="PROGRESS",
              progress_current=current, progress_total=total)


def mark_succeeded(job_id: str, result: Any) -> None:
    """Record the job's result, unless it was cancelled meanwhile."""
    set_state(job_id, UNFINISHED, state="SUCCESS", result=result, finished_at=utcnow())


def mark_failed(job_id: str, error: BaseException) -> None:
    """Record why the job failed: the exception's type and message, never a traceback."""
    # A database error's own text carries the SQL statement and its values;
    # the driver's message is the part that explains.
    message = str(error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error)
    set_state(job_id, UNFINISHED, state="FAILURE", finished_at=utcnow(),
              error_type=clip(type(error).__name__, ERROR_TYPE_LENGTH),
              error_message=message[:ERROR_MESSAGE_LENGTH] or type(error).__name__)


def mark_lost(job_ids: Sequence[str], running_since: datetime) -> int:
    """Record as failed the jobs of job_ids still running since before running_since; return how many.

    One UPDATE guarded by state and start time: a job that has finished, or
    started again, since its id was chosen is left alone.
    """
    error_type, error_message = WORKER_LOST
    result = db.session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.state.in_(RUNNING), Job.started_at < running_since)
        .values(state="FAILURE", finished_at=utcnow(), error_type=error_type,
                error_message=error_message)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def cancel_job(job_id: str) -> bool:
    """Revoke an unfinished job, terminating it if it runs; False if it had finished."""
    if not set_state(job_id, UNFINISHED, state="REVOKED", finished_at=utcnow()):
        return False
    try:
        current_app.extensions["celery"].control.revoke(job_id, terminate=True)
    except Exception as error:
        # The row says REVOKED, so a worker that picks the task up later
        # skips it, and a running one's result is not recorded.
        logger.warning("Could not broadcast the revocation of job %s: %s", job_id, error)
    return True
