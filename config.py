"""Build the application's configuration from the environment.

This is the only module that reads os.environ: everything else reads app.config.
"""
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dotenv import load_dotenv
from kombu import Queue

ENVIRONMENTS = ("development", "test", "production")
DEFAULT_INSTANCE_PATH = Path(__file__).resolve().parent / "instance"
MiB = 1024 * 1024
EMBEDDED_FOLDERS = ("queue", "control", "results")

# The web process publishes and moves on: a broker that refuses, hangs or
# does not answer must cost it well under a second, so every broker wait in
# the web process is bounded.
CLIENT_BROKER_OPTIONS = {
    "socket_connect_timeout": 0.25,
    "socket_timeout": 0.25,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
# The worker is the opposite: it should wait out a broker restart, so it keeps
# kombu's patient reconnection and only bounds a read long enough to notice a
# dead TCP connection.
WORKER_BROKER_OPTIONS = {
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
}
# Keep the worker's remote-control queue (ping, inspect, revoke) when its
# channel closes, rather than deleting it, which needs Redis. When Redis goes
# away, Celery 5.7 closes the lost connection twice
# (https://github.com/celery/celery/pull/10242). kombu's first close stops at
# the first channel that fails, and deleting the control queue fails, so the
# task channel can be left to the second close; by then the connection has
# forgotten its URL, and handing back the message of a running task kills the
# worker: "Unrecoverable error: AttributeError 'NoneType' object has no
# attribute 'hostname'" (the same error from a delete on close:
# https://github.com/celery/kombu/issues/582). On Redis, durable changes
# nothing else: broadcasts go out by PUBLISH, so a stopped worker leaves one
# unused entry in the control exchange's binding set, and exclusive, which
# Celery refuses together with durable, means nothing to Redis. Gossip's queue
# fails the same way, but a kept one would go on collecting every worker's
# events, so the Procfile turns gossip off instead.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#control-queue-durable
WORKER_CONTROL_QUEUE = {"control_queue_durable": True, "control_queue_exclusive": False}
# Redis re-delivers a message that was taken but not acknowledged after this
# many seconds: that is how the task of a worker that died without a word
# (SIGKILL, a crashed dyno) comes back. It must stay longer than the longest
# task, or a task still running is handed out twice.
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
VISIBILITY_TIMEOUT = 3600
# Heroku sends SIGTERM to every process of a dyno, then SIGKILL 30 s later.
# The Procfile sets REMAP_SIGTERM=SIGQUIT, so SIGTERM starts Celery's cold
# shutdown: it waits this long for running tasks, then cancels the rest, which
# acks_late puts back on the queue for the next worker. Under 30 s, with room
# to hand the messages back. https://docs.celeryq.dev/en/stable/userguide/workers.html#soft-shutdown
SOFT_SHUTDOWN_SECONDS = 20
# Queues by purpose, so that a backlog of one kind of task never holds up
# another: `jobs` for the jobs that users poll (background.run_job),
# `celery`, Celery's default, for what someone waits for (the shell
# experiment) or needs soon (audit events), and `fire-and-forget` for the
# product list's demo task, which nobody waits for. The worker consumes all
# three, so no -Q is needed; how a job gets its turn: docs/jobs.md.
# https://docs.celeryq.dev/en/stable/userguide/routing.html
QUEUES = ("jobs", "celery", "fire-and-forget")
# The product list's demo task is dropped, not run, once it has waited this
# long (seconds): it takes 3 s, and whoever listed the products has stopped
# looking for it in the worker's log by then.
SLOW_ADD_EXPIRES = 60
# How long to wait for a PostgreSQL connection before calling the database
# down: a server that accepts and never answers must not hold a request until
# gunicorn kills the process (30 s). Two seconds is the least libpq and
# psycopg accept. https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT
DATABASE_CONNECT_TIMEOUT = 2
# The longest a statement (waits for row locks included) may run on PostgreSQL,
# in seconds; then the server cancels it and the request gets a 503.
DATABASE_STATEMENT_TIMEOUT = 5
# Housekeeping (background/housekeeping.py), sent by Celery beat every
# HOUSEKEEPING_SECONDS. A job running for longer than STALE_JOB_SECONDS that
# no worker holds is one whose worker died: no job runs that long, since every
# job is stopped after at most 330 s (background/jobs.py), and a retry waits at
# most two minutes more. Finished jobs and audit events are deleted after
# their retention. A zero age turns that part off.
HOUSEKEEPING_SECONDS = 300
STALE_JOB_SECONDS = 900
JOB_RETENTION_DAYS = 30
AUDIT_RETENTION_DAYS = 365


class ConfigError(RuntimeError):
    """Raised at start-up when the environment cannot make a working config."""


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the Flask config for the environment named by APP_ENV (os.environ + .env by default)."""
    if environ is None:
        load_dotenv()
        environ = os.environ
    instance_path = Path(environ.get("INSTANCE_PATH") or DEFAULT_INSTANCE_PATH).resolve()
    name = environ.get("APP_ENV") or "development"
    if name not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
    production = name == "production"

    def setting(variable: str) -> str | None:
        value = environ.get(variable) or None
        if value is None and production:
            raise ConfigError(f"{variable} must be set when APP_ENV=production")
        return value

    secret_key = setting("SECRET_KEY") or "dev-only-secret-key"
    database_url = setting("DATABASE_URL")
    redis_url = setting("REDIS_URL")
    visibility_timeout = int(environ.get("VISIBILITY_TIMEOUT") or VISIBILITY_TIMEOUT)
    housekeeping_seconds = number(environ, "HOUSEKEEPING_SECONDS", HOUSEKEEPING_SECONDS)
    if not housekeeping_seconds:
        raise ConfigError("HOUSEKEEPING_SECONDS must be more than 0")
    embedded = [] if redis_url else [str(instance_path / "celery" / d) for d in EMBEDDED_FOLDERS]
    return {
        "APP_ENV": name,
        "INSTANCE_PATH": str(instance_path),
        "TESTING": name == "test",
        # Flask would take debug mode from FLASK_DEBUG, and a variable left set
        # on a dyno must not turn it on under gunicorn. `flask run --debug`
        # still works: the CLI sets debug after loading the app.
        "DEBUG": False,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": (
            database_uri(database_url)
            if database_url
            else f"sqlite:///{instance_path / 'development.sqlite'}"
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(
            database_url,
            float(environ.get("DATABASE_STATEMENT_TIMEOUT") or DATABASE_STATEMENT_TIMEOUT),
        ),
        # Heroku's router is one proxy in front of the app: trust the last
        # X-Forwarded-For/-Proto/-Port it adds, and nothing a client sent.
        # https://devcenter.heroku.com/articles/http-routing#heroku-headers
        "PROXY_HOPS": int(environ.get("PROXY_HOPS") or (1 if production else 0)),
        "MAX_CONTENT_LENGTH": MiB,
        # Created at start-up: beat's schedule file, the SQLite file and the
        # embedded broker live here.
        "DATA_FOLDERS": [str(instance_path), *embedded],
        "SLOW_ADD_SECONDS": float(environ.get("SLOW_ADD_SECONDS") or 3),
        "SLOW_ADD_EXPIRES": float(environ.get("SLOW_ADD_EXPIRES") or SLOW_ADD_EXPIRES),
        "ASYNC_STEP_SECONDS": float(environ.get("ASYNC_STEP_SECONDS") or 0.5),
        "STALE_JOB_SECONDS": number(environ, "STALE_JOB_SECONDS", STALE_JOB_SECONDS),
        "JOB_RETENTION_DAYS": number(environ, "JOB_RETENTION_DAYS", JOB_RETENTION_DAYS),
        "AUDIT_RETENTION_DAYS": number(environ, "AUDIT_RETENTION_DAYS", AUDIT_RETENTION_DAYS),
        "CELERY": celery_settings(
            redis_uri(redis_url) if redis_url else None,
            instance_path,
            concurrency=int(environ.get("CELERY_CONCURRENCY") or 2),
            soft_shutdown=float(environ.get("SOFT_SHUTDOWN_SECONDS") or SOFT_SHUTDOWN_SECONDS),
            visibility_timeout=visibility_timeout,
            pool_limit=int(environ["BROKER_POOL_LIMIT"]) if environ.get("BROKER_POOL_LIMIT") else None,
        ) | beat_settings(instance_path, housekeeping_seconds),
        # Applied by the worker on start-up only (see tasks.make_celery).
        "CELERY_WORKER": (
            {"broker_transport_options": broker_options(visibility_timeout, WORKER_BROKER_OPTIONS),
             **WORKER_CONTROL_QUEUE}
            if redis_url
            else {}
        ),
    }


def number(environ: Mapping[str, str], variable: str, default: float) -> float:
    """Return the variable's value, a number of at least 0, or default when it is unset or empty."""
    value = environ.get(variable) or default
    try:
        parsed = float(value)
    except ValueError:
        raise ConfigError(f"{variable} must be a number, not {value!r}") from None
    if not 0 <= parsed < float("inf"):
        raise ConfigError(f"{variable} must be a number of at least 0, not {value!r}")
    return parsed


def database_uri(url: str) -> str:
    """Return a SQLAlchemy URL with an installed driver for a Heroku-style URL.

    Heroku still hands out postgres:// URLs, which SQLAlchemy 1.4+ rejects, and
    a bare postgresql:// picks psycopg2 on SQLAlchemy 2.0; psycopg 3 is the
    driver installed here.
    """
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg{sep}{rest}"
    return url


def engine_options(database_url: str | None, statement_timeout: float) -> dict[str, Any]:
    """Return SQLAlchemy engine options: fresh connections, and bounded waits on PostgreSQL."""
    # A connection that the database closed while idle is replaced rather
    # than failing the next request.
    options: dict[str, Any] = {"pool_pre_ping": True}
    if database_url and database_uri(database_url).startswith("postgresql"):
        options["connect_args"] = {
            "connect_timeout": DATABASE_CONNECT_TIMEOUT,
            # Set when the connection starts, so it costs no round trip. (A
            # transaction-mode PgBouncer refuses startup options: set it with
            # ALTER ROLE ... SET statement_timeout there instead.)
            "options": f"-c statement_timeout={round(statement_timeout * 1000)}",
        }
    else:
        # SQLite has no statement timeout, but bounds its wait for another
        # process's write lock the same way (pysqlite's default is 5 s).
        options["connect_args"] = {"timeout": statement_timeout}
    return options


def redis_uri(url: str) -> str:
    """Return url, accepting Heroku Key-Value Store's self-signed TLS certificate.

    Heroku's rediss:// URLs use a certificate no client can verify, and both
    kombu and Celery's result backend refuse a rediss:// URL that does not
    say ssl_cert_reqs. https://devcenter.heroku.com/articles/connecting-heroku-redis#connecting-in-python
    """
    parts = urlsplit(url)
    if parts.scheme != "rediss" or "ssl_cert_reqs" in parse_qs(parts.query):
        return url
    return f"{url}{'&' if parts.query else '?'}ssl_cert_reqs=none"


def broker_options(visibility_timeout: float, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return Redis transport options: the visibility timeout plus extra."""
    return {
        "visibility_timeout": visibility_timeout,
        # Workers look for messages whose timeout has passed every tenth of it
        # (at most every 10 s), rather than kombu's default of every 100 s.
        "unacked_restore_interval": min(10, max(1, visibility_timeout // 10)),
        "unacked_restore_throttle": 1,
        **extra,
    }


def celery_settings(redis_url: str | None, instance_path: Path, concurrency: int,
                    soft_shutdown: float, visibility_timeout: int,
                    pool_limit: int | None = None) -> dict[str, Any]:
    """Return Celery's settings (lowercase names) for Redis, or the embedded default."""
    settings: dict[str, Any] = {
        # A task interrupted by a worker restart goes back to the queue rather
        # than being lost (Heroku restarts every dyno at least once a day).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": concurrency,
        "worker_soft_shutdown_timeout": soft_shutdown,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": CLIENT_BROKER_OPTIONS["socket_connect_timeout"],
        "task_publish_retry_policy": {
            key: CLIENT_BROKER_OPTIONS[key]
            for key in ("max_retries", "interval_start", "interval_step", "interval_max")
        },
        "result_expires": 24 * 3600,
        # Each queue is bound under its own name: bound under Celery's default
        # key, all three would get a copy of a message that a kombu client
        # publishes to the `celery` exchange by name.
        "task_queues": [Queue(name, routing_key=name) for name in QUEUES],
        "task_default_queue": "celery",
        "task_routes": {"background.run_job": {"queue": "jobs"}},
    }
    if pool_limit is not None:
        # Broker connections a process keeps for reuse (Celery's default: 10).
        # Flower asks the workers eight questions at once, each on a pooled
        # connection that it then keeps: 21 Redis connections in all, more than
        # Heroku Key-Value Store mini accepts. `pipenv run flower` sets 0: a
        # connection per question, closed after it, and 3 held in all.
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-pool-limit
        settings["broker_pool_limit"] = pool_limit
    if redis_url:
        settings |= {
            "broker_url": redis_url,
            "result_backend": redis_url,
            "broker_transport_options": broker_options(visibility_timeout, CLIENT_BROKER_OPTIONS),
            "redis_socket_connect_timeout": 1,
            "redis_socket_timeout": 5,
            "redis_retry_on_timeout": True,
            # Task events, so that Flower and `celery events` can follow each
            # task: the worker announces it received, started, succeeded or
            # failed, and whoever publishes it (the web process, flask shell)
            # that it was sent. On Redis each is one PUBLISH, dropped when
            # nobody listens. The embedded broker has no such channel: it
            # writes a file per event for each listener that ever subscribed,
            # and one that stopped without unsubscribing (a Flower stopped by
            # Ctrl-C) keeps collecting them for good, so it sends none.
            # https://docs.celeryq.dev/en/stable/userguide/monitoring.html#events
            "worker_send_task_events": True,
            "task_send_sent_event": True,
        }
    else:
        # No Redis needed to try it out: kombu's filesystem transport keeps the
        # queue, and Celery's file backend the results, in the instance folder.
        queue = instance_path / "celery" / "queue"
        settings |= {
            # The transport ignores the host, but kombu warns at every start
            # when a URL names none.
            "broker_url": "filesystem://localhost/",
            "broker_transport_options": {
                "data_folder_in": str(queue),
                "data_folder_out": str(queue),
                "control_folder": str(instance_path / "celery" / "control"),
                "store_processed": False,
                "polling_interval": 0.1,
            },
            "result_backend": (instance_path / "celery" / "results").as_uri(),
            # This transport cannot drive Celery's event loop, so the worker uses
            # billiard's blocking pool, whose processes wait for tasks on one
            # shared lock. A SIGTERM to the whole process group (GNU timeout,
            # honcho) stops them all at once, and one can take the lock as
            # another lets go of it and die holding it: the worker then waits
            # for that lock at exit, forever. With one pool process, no other is
            # there to take it. https://github.com/celery/billiard/issues/104
            "worker_concurrency": 1,
        }
    return settings


def beat_settings(instance_path: Path, housekeeping_seconds: float) -> dict[str, Any]:
    """Return Celery beat's settings: housekeeping every housekeeping_seconds."""
    return {
        # Only the `beat` process reads these, and exactly one must run: each
        # beat keeps its own schedule, so two would send every task twice.
        # https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html
        "beat_schedule": {
            "housekeeping": {
                "task": "background.housekeeping",
                "schedule": housekeeping_seconds,
                # Not run at all rather than late: with no worker for a while,
                # one run makes up for all the missed ones.
                "options": {"expires": housekeeping_seconds},
            },
        },
        # When each entry last ran. On Heroku the file goes with every restart
        # of the dyno, which costs at most one interval's wait.
        "beat_schedule_filename": str(instance_path / "celerybeat-schedule"),
    }
