"""Talking to the broker: a cheap publish for the web process.

Profiled with pyinstrument (benchmarks/), a plain apply_async spent most of
its CPU on work that this app's publishes never use; publish keeps Celery's
message protocol, its retry policy and its publish signals.
"""
import reprlib
from typing import Any

from celery import Task
from celery.local import Proxy
from kombu.utils.uuid import uuid


def publish(task: Task, args: tuple = (), kwargs: dict | None = None, *,
            task_id: str | None = None, headers: dict[str, Any] | None = None) -> str:
    """Send a message for task(*args, **kwargs) to the default queue, keeping no result; return its id.

    This is task.apply_async(args, kwargs, task_id=task_id, headers=headers,
    ignore_result=True) without what these calls never use: routing rules,
    eager mode, argument checks, links to a parent task, and a result to
    subscribe to. The message is the one apply_async sends, built and sent by
    Celery's own create_task_message and send_task_message.
    """
    if isinstance(task, Proxy):
        # A @shared_task is a proxy that looks the task up again on every
        # attribute read; read the task itself.
        task = task._get_current_object()
    amqp = task.app.amqp
    task_id = task_id or uuid()
    kwargs = kwargs or {}
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
        amqp.send_task_message(producer, task.name, message, headers=headers, declare=[])
    return task_id
