"""The Celery app factory and the background tasks."""
import logging
import reprlib
import time
from typing import Any

from celery import Celery, Task, shared_task
from celery.local import Proxy
from celery.result import AsyncResult
from celery.signals import celeryd_init
from flask import Flask, current_app
from kombu.transport import redis
from kombu.utils.uuid import uuid

import jobs
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


def publish(task: Task, args: tuple, kwargs: dict) -> str:
    """Send a message for task(*args, **kwargs) to the default queue, keeping no result; return its id.

    This is task.apply_async(args, kwargs, ignore_result=True) without what a
    fire-and-forget call never uses: routing rules, eager mode, argument
    checks, links to a parent task, and a result to subscribe to. The message
    is the one apply_async sends, built and sent by Celery's own
    create_task_message and send_task_message, with the same retry policy.
    """
    if isinstance(task, Proxy):
        # A @shared_task is a proxy that looks the task up again on every
        # attribute read; read the task itself.
        task = task._get_current_object()
    amqp = task.app.amqp
    task_id = uuid()
    message = amqp.create_task_message(
        task_id, task.name, args, kwargs, ignore_result=True,
        time_limit=task.time_limit, soft_time_limit=task.soft_time_limit,
        # Celery's own saferepr, and the settings it reads, cost more than
        # the rest of the message; reprlib is as bounded, for logs and monitors.
        argsrepr=reprlib.repr(args), kwargsrepr=reprlib.repr(kwargs),
    )
    with task.app.producer_or_acquire() as producer:
        # kombu checks on every publish that the queue was declared, which
        # costs a copy of the queue and a retry wrapper each time. Redis
        # needs no declaration to take a message, and the worker declares
        # the queue when it starts consuming.
        amqp.send_task_message(producer, task.name, message, declare=[])
    return task_id


class RedisChannel(redis.Channel):
    """kombu's Redis channel, with one redis-py client per connection pool rather than per command.

    kombu builds a new redis.Redis object (a dictionary of some 170 response
    callbacks) for every command it sends, which was a fifth of the CPU of
    an enqueue. The client is only a front for the channel's connection
    pool, so one per pool does the same work.
    """

    _sync_client = None

    def _create_client(self, asynchronous: bool = False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        # The pool is replaced after a fork or a disconnection; so is the client.
        if self._sync_client is None or self._sync_client.connection_pool is not self.pool:
            self._sync_client = super()._create_client()
        return self._sync_client


class RedisTransport(redis.Transport):
    """kombu's Redis transport with RedisChannel; config.py names it as broker_transport."""

    Channel = RedisChannel


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
