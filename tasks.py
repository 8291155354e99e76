"""The Celery app factory and the background tasks."""
import logging
import time
from typing import Any

from celery import Celery, Task, shared_task
from celery.result import AsyncResult
from celery.signals import celeryd_init
from flask import Flask, current_app

import jobs
from broker import publish
from integration import estimate_area

logger = logging.getLogger(__name__)


def make_celery(app: Flask) -> Celery:
    """Create the Celery app for app; every task runs inside app's app context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                if jobs.is_job(self.request):
                    return run_job(self, args, kwargs)
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    celery.flask_app = app
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@celeryd_init.connect
def configure_worker(sender: str, instance: Any, conf: Any, **kwargs: Any) -> None:
    """Give the worker its own, patient broker settings before it connects."""
    conf.update(instance.app.flask_app.config["CELERY_WORKER"])


def run_job(task: Task, args: tuple, kwargs: dict) -> Any:
    """Run a job's task, keeping its row current: started, then succeeded or failed."""
    job_id = task.request.id
    if not jobs.mark_started(job_id):
        logger.info("Job %s was cancelled or removed; not running it.", job_id)
        return None
    try:
        result = task.run(*args, **kwargs)
    except Exception as error:
        jobs.mark_failed(job_id, error)
        raise
    jobs.mark_succeeded(job_id, result)
    return result


def fire_and_forget(task: Task, *args: Any, **kwargs: Any) -> AsyncResult | None:
    """Queue task(*args, **kwargs) without waiting for it or keeping its result.

    Return the task's handle, or None when the broker could not take it.

    The caller's response must not depend on the broker, so whatever the
    broker does (refuse, hang, answer with an error) is logged and swallowed.
    ignore_result matters with the Redis result backend: without it every
    publish subscribes this process to a result channel that nobody will ever
    read, which grows without bound.
    """
    try:
        task_id = publish(task, args, kwargs)
    except Exception as error:
        logger.warning("Could not queue %s: %s", task.name, error)
        return None
    return AsyncResult(task_id)


@shared_task(ignore_result=False)
def very_slow_add(a: int, b: int) -> int:
    """Wait SLOW_ADD_SECONDS (3 s by default), then return a + b."""
    time.sleep(current_app.config["SLOW_ADD_SECONDS"])
    return a + b


@shared_task(bind=True)
def async_process(self: Task, steps: int) -> dict[str, int]:
    """Work through steps, one every ASYNC_STEP_SECONDS, reporting progress after each."""
    seconds = current_app.config["ASYNC_STEP_SECONDS"]
    jobs.report_progress(self.request.id, 0, steps)
    for step in range(1, steps + 1):
        time.sleep(seconds)
        jobs.report_progress(self.request.id, step, steps)
    return {"steps": steps}


# Inputs are bounded (size, expression length and depth) so that a job takes
# seconds; the limits stop one that somehow does not.
@shared_task(soft_time_limit=60, time_limit=75)
def integrate(f: str, a: float, b: float, c: float, d: float, size: int,
              seed: int | None = None) -> dict[str, float | int]:
    """Estimate the area under f inside [a, b] x [c, d] by Monte-Carlo sampling."""
    return estimate_area(f, a, b, c, d, size, seed)
