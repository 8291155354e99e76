"""The production app, plus three routes that only the benchmark serves.

    gunicorn --config gunicorn.conf.py benchmarks.bench_app:app

- GET /bench/ok: the ceiling, a plain Flask "ok" under the same gunicorn;
- GET /bench/enqueue: queue very_slow_add(1, 2) as the product list does,
  with the public very_slow_add.apply_async((1, 2), ignore_result=True), then
  answer "ok": less /bench/ok's cost, what an enqueue costs the web process;
- GET /bench/bare-lpush: one redis-py LPUSH of a message's size to a list
  nobody reads, then "ok": the floor of any publish that waits for Redis to
  say it has the message.

The production app never has them: wsgi.py does not import this module,
which takes nothing from the project but wsgi's two apps.
"""
import redis

from wsgi import app, celery

# About the size of very_slow_add(1, 2)'s message as the broker stores it.
MESSAGE = b"x" * 1000
BARE_LIST = "bench:bare"
bare_client = redis.Redis.from_url(celery.conf.broker_url)
# Found by its name in Celery's registry, wherever the project defines it.
very_slow_add = next(task for name, task in celery.tasks.items()
                     if name.rpartition(".")[2] == "very_slow_add")


def ok() -> str:
    """Answer as little as Flask can: the ceiling for any endpoint of this app."""
    return "ok"


def enqueue() -> str:
    """Queue very_slow_add(1, 2) without keeping its result, as the product list does."""
    very_slow_add.apply_async((1, 2), ignore_result=True)
    return "ok"


def bare_lpush() -> str:
    """Push one message-sized value with one LPUSH, the least a publish can do."""
    bare_client.lpush(BARE_LIST, MESSAGE)
    return "ok"


app.add_url_rule("/bench/ok", view_func=ok)
app.add_url_rule("/bench/enqueue", view_func=enqueue)
app.add_url_rule("/bench/bare-lpush", view_func=bare_lpush)
