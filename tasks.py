"""The Celery app factory and the background tasks."""
import logging
import time
from typing import Any

from celery import Celery, Task, shared_task
from celery.signals import celeryd_init
from flask import Flask, current_app

logger = logging.getLogger(__name__)


def make_celery(app: Flask) -> Celery:
    """Create the Celery app for app; every task runs inside app's app context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
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


def fire_and_forget(task: Task, *args: Any) -> None:
    """Queue task(*args) without waiting for it or keeping its result.

    The caller's response must not depend on the broker, so whatever the
    broker does (refuse, hang, answer with an error) is logged and swallowed. ignore_result matters with the Redis result
    backend: without it every publish subscribes this process to a result
    channel that nobody will ever read, which grows without bound.
    """
    try:
        task.apply_async(args, ignore_result=True)
    except Exception as error:
        logger.warning("Could not queue %s: %s", task.name, error)


@shared_task(ignore_result=False)
def very_slow_add(a: int, b: int) -> int:
    """Wait SLOW_ADD_SECONDS (3 s by default), then return a + b."""
    time.sleep(current_app.config["SLOW_ADD_SECONDS"])
    return a + b
