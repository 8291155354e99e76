"""Results keyed by URL: start a task once per polling URL, then report on it.

    status, job_id = check_status_or_begin(very_slow_add, (5, 7), polling_url="/sums/5/7")

The first call starts the task ("started"); calls while it runs start nothing
("running"); once it succeeded, calls answer from the stored result
("complete"). After a failure the next call starts a new attempt. The job
table's unique polling_url makes the first call atomic across processes.
"""
import hashlib
from collections.abc import Sequence
from typing import Any

from celery import Task
from flask import g, has_request_context, request
from sqlalchemy.exc import IntegrityError

from background.jobs import QueueUnavailable, new_job, queue
from background.models import POLLING_URL_LENGTH, UNFINISHED, Job
from models import db


def check_status_or_begin(
    task: Task,
    task_args: Sequence[Any] = (),
    task_kwargs: dict[str, Any] | None = None,
    polling_url: str | None = None,
    task_id: str | None = None,
    check_running: bool = True,
    cache_results: bool = True,
) -> tuple[str, str]:
    """Start task unless it already runs or has succeeded for this URL; return (status, job id).

    polling_url defaults to the current request's path. check_running=False
    starts a new task even while one runs; cache_results=False starts one even
    after a success. task_id looks the job up by id instead, and names a new one.
    """
    polling_url = storable_url(polling_url or default_url(task_id))
    job = find_job(polling_url, task_id)
    if job is not None:
        if job.state == "SUCCESS" and cache_results:
            return "complete", job.id
        if job.state in UNFINISHED and check_running:
            return "running", job.id
        # A failed, cancelled or deliberately re-run job gives up its URL.
        job.polling_url = None
        db.session.commit()
        task_id = None

    parameters = {"args": list(task_args), "kwargs": task_kwargs or {}}
    owner = g.get("user") if has_request_context() else None
    job = new_job(task.name.rsplit(".", 1)[-1], parameters, owner, polling_url, task_id)
    db.session.add(job)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request claimed this URL first: theirs is the one running.
        db.session.rollback()
        winner = find_job(polling_url, None)
        if winner is None:
            raise QueueUnavailable from None
        return ("complete" if winner.state == "SUCCESS" else "running"), winner.id
    queue(job, task, task_args, task_kwargs)
    return "started", job.id


def default_url(task_id: str | None) -> str | None:
    if task_id is None and has_request_context():
        return request.path
    return None


def storable_url(url: str | None) -> str | None:
    """Return url, or for one too long for its column, a prefix of it and a digest of the whole.

    A client chooses the path, so it can be of any length; a digest keeps one
    stored key per URL, which is what starts one task per URL.
    """
    if url is None or len(url) <= POLLING_URL_LENGTH:
        return url
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{url[:POLLING_URL_LENGTH - len(digest) - 1]}#{digest}"


def find_job(polling_url: str | None = None, task_id: str | None = None) -> Job | None:
    """Return the job for task_id, or else the one holding polling_url."""
    if task_id is not None:
        return db.session.get(Job, task_id)
    polling_url = storable_url(polling_url or default_url(None))
    if polling_url is None:
        return None
    return db.session.execute(db.select(Job).filter_by(polling_url=polling_url)).scalar_one_or_none()


def get_taskid_from_url(polling_url: str | None = None) -> str | None:
    """Return the id of the job holding polling_url, or None."""
    job = find_job(polling_url)
    return job.id if job else None


def get_url_from_taskid(task_id: str) -> str | None:
    """Return the polling URL that the job task_id holds, or None."""
    job = find_job(task_id=task_id)
    return job.polling_url if job else None


def process_is_running(polling_url: str | None = None, task_id: str | None = None) -> bool:
    """Tell whether the job is queued or running."""
    job = find_job(polling_url, task_id)
    return job is not None and job.state in UNFINISHED


def process_is_complete(polling_url: str | None = None, task_id: str | None = None) -> bool:
    """Tell whether the job has succeeded."""
    job = find_job(polling_url, task_id)
    return job is not None and job.state == "SUCCESS"


def process_is_running_or_complete(polling_url: str | None = None, task_id: str | None = None) -> bool:
    """Tell whether the job is queued, running or has succeeded."""
    job = find_job(polling_url, task_id)
    return job is not None and job.state in (*UNFINISHED, "SUCCESS")


def get_process_result(polling_url: str | None = None, task_id: str | None = None) -> Any:
    """Return the job's stored result, or None until it has succeeded."""
    job = find_job(polling_url, task_id)
    return job.result if job is not None and job.state == "SUCCESS" else None
