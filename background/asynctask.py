"""asynctask: run a function in the worker inside a copy of the caller's request context.

    @asynctask
    def record_visit(page: str) -> None:
        db.session.add(Visit(user_id=g.user.id if g.user else None, path=request.path, ...))

    record_visit("home")    # queued at once; returns the task's id, or None

In the worker the function sees the caller's method, path, query string,
remote address and headers, and g.user is the caller's user loaded again by
id. Credentials never travel through the broker: the Authorization and
Cookie headers are dropped, and the user is sent as an id, not as a token.
"""
import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from flask import current_app, g, has_request_context, request
from kombu.exceptions import OperationalError
from werkzeug.test import EnvironBuilder

from models import User, db

logger = logging.getLogger(__name__)

# Headers that carry credentials, or describe a body the copy does not have.
DROPPED_HEADERS = {"authorization", "proxy-authorization", "cookie", "content-length"}


def capture_request() -> dict[str, Any] | None:
    """Return what the worker needs to rebuild the current request, or None outside one."""
    if not has_request_context():
        return None
    user = g.get("user")
    return {
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string.decode("latin-1"),
        "remote_addr": request.remote_addr,
        "headers": [(k, v) for k, v in request.headers if k.lower() not in DROPPED_HEADERS],
        "user_id": user.id if user is not None else None,
    }


def run_in_request(context: dict[str, Any] | None, function: Callable, args, kwargs) -> Any:
    """Call function inside a request rebuilt from context, with g.user loaded again."""
    if context is None:
        g.user = None
        return function(*args, **kwargs)
    environ = EnvironBuilder(
        path=context["path"], method=context["method"], headers=context["headers"],
        query_string=context["query_string"],
        environ_base={"REMOTE_ADDR": context["remote_addr"]},
    ).get_environ()
    with current_app.request_context(environ):
        # A user deleted since the call is no user, not a crash.
        g.user = db.session.get(User, context["user_id"]) if context["user_id"] else None
        return function(*args, **kwargs)


def asynctask(function: Callable | None = None, **options: Any) -> Callable[..., str | None]:
    """Make calling function queue it to run in the worker with the caller's request context.

    Used bare (@asynctask) or with Celery task options (@asynctask(max_retries=3)).
    """
    if function is None:
        return functools.partial(asynctask, **options)

    @shared_task(name=f"{function.__module__}.{function.__name__}", **options)
    def task(context: dict[str, Any] | None, *args: Any, **kwargs: Any) -> Any:
        return run_in_request(context, function, args, kwargs)

    @functools.wraps(function)
    def enqueue(*args: Any, **kwargs: Any) -> str | None:
        """Queue the call; return the task's id, or None when the broker could not take it.

        Nobody reads the result, so none is kept (ignore_result).
        """
        try:
            return task.apply_async((capture_request(), *args), kwargs, ignore_result=True).id
        except OperationalError as error:
            logger.warning("Could not queue %s: %s", task.name, error)
            return None

    enqueue.task = task
    return enqueue
