"""Queue facts for operators and autoscalers: how many messages wait, and for how long.

Every task message is stamped with the time it was published, as HireFire's
and Judoscale's Celery adapters do, so that the age of the oldest waiting
message (the queue latency they scale worker dynos on) can be read from
Redis without taking the message off its queue.
"""
import json
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import before_task_publish
from redis.backoff import NoBackoff
from redis.retry import Retry

PUBLISHED_AT = "published_at"
NO_FACTS = {"length": None, "oldest_seconds": None}


@before_task_publish.connect
def stamp_publish_time(headers: dict[str, Any], **kwargs: Any) -> None:
    """Record in the message's headers when it was published, in seconds since the epoch."""
    # Celery's message carries no publish time of its own:
    # https://docs.celeryq.dev/en/stable/internals/protocol.html
    headers[PUBLISHED_AT] = time.time()


def queue_names(celery: Celery) -> list[str]:
    """Return the names of the queues the worker consumes, in its order."""
    return [queue.name for queue in celery.conf.task_queues]


def queue_facts(celery: Celery) -> dict[str, dict[str, Any]]:
    """Return each queue's length and the age in seconds of its oldest message.

    Only Redis can tell: on the embedded file broker every fact is None.
    """
    names = queue_names(celery)
    url = celery.conf.broker_url
    if not url.startswith(("redis://", "rediss://")):
        return {name: NO_FACTS for name in names}
    # A client of its own, closed afterwards, with the web process's bounded
    # broker timeouts and no retry: the caller polls again anyway.
    options = celery.conf.broker_transport_options
    client = redis.Redis.from_url(url, socket_connect_timeout=options["socket_connect_timeout"],
                                  socket_timeout=options["socket_timeout"],
                                  retry=Retry(NoBackoff(), 0))
    try:
        # kombu's Redis transport keeps a queue as a list under its name:
        # publishers LPUSH at the head, workers BRPOP the tail, so the oldest
        # message is at index -1. One round trip (MULTI/EXEC) for all queues.
        with client.pipeline() as pipe:
            for name in names:
                pipe.llen(name).lindex(name, -1)
            replies = pipe.execute()
    finally:
        client.close()
    now = time.time()
    return {name: {"length": length, "oldest_seconds": age(oldest, now)}
            for name, length, oldest in zip(names, replies[::2], replies[1::2])}


def age(message: bytes | None, now: float) -> float | None:
    """Return how many seconds ago message was published; None if no message or no stamp."""
    if message is None:
        return None
    published = json.loads(message).get("headers", {}).get(PUBLISHED_AT)
    if not isinstance(published, (int, float)):
        return None  # published by a process that does not stamp messages
    # Clocks of two dynos can differ slightly: never report a negative age.
    return round(max(0.0, now - published), 3)
