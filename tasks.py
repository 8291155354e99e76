"""The Celery app, made from the Flask app, and the exercise's slow task."""
import time
from typing import Any

from celery import Celery, Task, shared_task
from flask import Flask, current_app


def make_celery(app: Flask) -> Celery:
    """Create the Celery app for app; every task runs inside app's app context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


# The result is kept (ignore_result=False) so that job.wait() works in flask shell.
@shared_task(ignore_result=False)
def very_slow_add(a: int, b: int) -> int:
    """Wait SLOW_ADD_SECONDS (3 s by default), then return a + b."""
    time.sleep(current_app.config["SLOW_ADD_SECONDS"])
    return a + b
