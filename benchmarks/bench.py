"""Measure what the web and worker processes cost, on this machine, against issue 7's targets.

    pipenv run bench                    # the full run, SQLite, a few minutes
    pipenv run bench --database-url postgresql://postgres@127.0.0.1:5432/postgres
    pipenv run bench --quick            # every measure on tiny settings, in seconds

It starts its own redis-server on a free port, the Procfile's gunicorn (two
workers) and the Procfile's Celery worker, on fresh databases it creates and
drops, and loads them with wrk (or, without wrk, a slower Python client).
Variants are interleaved (A, B, C, A, B, C ...) and figures are medians of
the rounds, so a machine that gets busier halfway through shifts them all
alike. Results go to benchmarks/results/ as Markdown and JSON.
"""
import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import flask_migrate
import psycopg
from sqlalchemy import event, insert, text
from sqlalchemy.engine import make_url

import jobs
from benchmarks import report
from benchmarks.load import Load, load, loader
from benchmarks.processes import Web, Worker, cpu_seconds, rss_bytes, settle, sockets_to
from config import database_uri, from_env
from models import Job, Product, User, db
from tasks import async_process, fire_and_forget, very_slow_add
from tests.services import ROOT, free_port, private_redis, wait_for
from wsgi import create_app

MIGRATIONS = str(ROOT / "migrations")
RESULTS = ROOT / "benchmarks" / "results"
SMALL_TABLE = 100
JOB_PAGE = 100
CONNECTIONS = 8
WEB_CONCURRENCY = 2
# What each HTTP variant requests, from which server (the small or the large table), over
# how many connections. Throughput is measured with 8; the latency the enqueue adds, with
# one, so that requests waiting for a busy gunicorn worker do not count in it.
# Where /bench/products-with-bare-lpush pushes (bench_app.py, which this module cannot import:
# importing it builds the app from this process's environment).
BARE_LIST = "bench:bare"
HTTP_VARIANTS = {
    "products": ("small", "GET", "/api/v1/products", "", CONNECTIONS),
    "products_unpublished": ("small", "GET", "/bench/products-without-publishing", "", CONNECTIONS),
    "products_bare_lpush": ("small", "GET", "/bench/products-with-bare-lpush", "", CONNECTIONS),
    "ceiling": ("small", "GET", "/bench/ok", "", CONNECTIONS),
    "job_start": ("small", "POST", "/async_process/start", '{"steps": 1}', CONNECTIONS),
    "products_large": ("large", "GET", "/api/v1/products", "", CONNECTIONS),
    "products_alone": ("small", "GET", "/api/v1/products", "", 1),
    "products_unpublished_alone": ("small", "GET", "/bench/products-without-publishing", "", 1),
}
WORKER_VARIANTS = {"ours": "wsgi:celery", "defaults": "benchmarks.celery_defaults:celery"}
# warmup: seconds of load before measuring; pause: seconds of quiet between measures.
FULL = {"rounds": 5, "seconds": 5, "warmup": 1, "pause": 1.0, "rows": 100_000,
        "memory_requests": 20_000, "tasks": 3000, "pickups": 50, "worker_rounds": 3}
QUICK = {"rounds": 1, "seconds": 1, "warmup": 0, "pause": 0.1, "rows": 1_000,
         "memory_requests": 300, "tasks": 100, "pickups": 5, "worker_rounds": 1}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every measure and write the results; return them."""
    options = parse_arguments(argv)
    started = time.monotonic()
    machine = report.machine(options.loader, "PostgreSQL" if options.database_url else "SQLite")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        redis_server = stack.enter_context(private_redis(work))
        small, large = (stack.enter_context(database(options.database_url, work, name))
                        for name in ("small", "large"))
        env = {"APP_ENV": "production", "SECRET_KEY": "benchmark", "REDIS_URL": redis_server.url,
               "SLOW_ADD_SECONDS": "0", "ASYNC_STEP_SECONDS": "0",
               "WEB_CONCURRENCY": str(WEB_CONCURRENCY), "CELERY_CONCURRENCY": "2"}
        prepare(large, env, options.rows)
        app = prepare(small, env, SMALL_TABLE)
        redis = redis_server.client()
        servers = {}
        for name, url in (("small", small), ("large", large)):
            server = Web({**env, "DATABASE_URL": url}, free_port(),
                         "benchmarks.bench_app:app", work / f"web-{name}.log")
            stack.callback(server.stop)
            servers[name] = server
        for server in servers.values():
            server.wait_ready()

        def step(message: str) -> None:
            print(f"[{time.monotonic() - started:5.0f} s] {message}", flush=True)

        step(f"HTTP: {options.rounds} rounds of {len(HTTP_VARIANTS)} variants, "
             f"{options.seconds} s each, with {options.loader}")
        http = measure_http(servers, redis, options)
        step(f"memory: {options.memory_requests} product listings")
        memory = measure_memory(servers["small"], redis_server, redis, options, http)
        step("SQL queries of a page of jobs")
        queries = count_job_page_queries(app)
        step(f"worker: {options.worker_rounds} rounds of {len(WORKER_VARIANTS)} variants")
        worker = measure_worker(app, {**env, "DATABASE_URL": small}, redis, work, options)
        results = {
            "machine": machine,
            "settings": {key: getattr(options, key) for key in FULL},
            "http": http, "memory": memory, "queries": queries, "worker": worker,
        }
        results["summary"] = report.summarise(results)
        results["machine"]["seconds"] = round(time.monotonic() - started)
        with app.app_context():
            db.engine.dispose()
    write(results, options.output, "quick" if options.quick else "bench")
    return results


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings: seconds, not minutes")
    parser.add_argument("--database-url", help="a PostgreSQL server to create two databases on "
                                               "(default: SQLite files)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--loader", choices=("wrk", "python"), default=loader(),
                        help="load generator (default: wrk if installed)")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    options = parser.parse_args(argv)
    for key, value in (QUICK if options.quick else FULL).items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    return options


@contextmanager
def database(server_url: str | None, work: Path, name: str) -> Iterator[str]:
    """Yield the URL of a new, empty database: on server_url's PostgreSQL, or a SQLite file."""
    if not server_url:
        yield f"sqlite:///{work / f'{name}.sqlite'}"
        return
    admin = make_url(database_uri(server_url)).set(drivername="postgresql")
    database_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin_url = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database_name}"')
    try:
        yield admin.set(database=database_name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{database_name}" WITH (FORCE)')


def prepare(url: str, env: dict[str, str], products: int):
    """Migrate the database at url and store `products` products; return an app using it."""
    app = create_app(from_env({**env, "DATABASE_URL": url}))
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS)
        rows = [{"name": f"Product {n}", "description": f"Sample product number {n}."}
                for n in range(1, products + 1)]
        for start in range(0, products, 10_000):
            db.session.execute(insert(Product), rows[start:start + 10_000])
        db.session.commit()
        # A table this size would have been vacuumed and analysed by now
        # (autovacuum); without it PostgreSQL cannot count from the index alone.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE" if db.engine.name == "postgresql"
                                    else "ANALYZE"))
    return app


def measure_http(servers: dict[str, Web], redis, options) -> dict[str, Any]:
    """Load every HTTP variant in turn, round after round; return each run's figures."""
    for name, (server, method, path, body, connections) in HTTP_VARIANTS.items():
        if options.warmup:
            load(servers[server].url + path, options.warmup, connections, method, body,
                 options.loader)
    redis.delete("celery")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in HTTP_VARIANTS}
    names = list(HTTP_VARIANTS)
    for round_number in range(options.rounds):
        # Each round starts with another variant, so none always runs first.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            server, method, path, body, connections = HTTP_VARIANTS[name]
            runs[name].append(timed_load(servers[server], path, method, body, connections,
                                         options))
            # Nothing consumes the tasks the listings queue; empty the queue
            # so that every run starts alike.
            redis.delete("celery", BARE_LIST)
            settle(options.pause / 3)
    return runs


def timed_load(server: Web, path: str, method: str, body: str, connections: int,
               options) -> dict[str, float]:
    """Load one path of server; return its rate, median latency and web CPU per request."""
    workers = server.workers()
    cpu_before = cpu_seconds(workers)
    result: Load = load(server.url + path, options.seconds, connections, method, body,
                        options.loader)
    cpu = cpu_seconds(workers) - cpu_before
    if server.workers() != workers:
        raise RuntimeError(f"gunicorn restarted a worker during {path}: see {server.log}")
    if result.errors:
        raise RuntimeError(f"{result.errors} failed requests to {path}: see {server.log}")
    return {"requests": result.requests, "seconds": round(result.seconds, 3),
            "rate": round(result.rate, 1), "median_ms": round(result.median_latency * 1000, 3),
            "cpu_ms_per_request": round(cpu * 1000 / result.requests, 4)}


def measure_memory(server: Web, redis_server, redis, options, http) -> dict[str, Any]:
    """List products `memory_requests` times; return what the web processes held before and after."""
    rate = statistics.median(run["rate"] for run in http["products"])
    url = server.url + "/api/v1/products"
    # Warm-up first: the first requests import and cache for good, which is not growth.
    if options.warmup:
        load(url, max(1.0, options.memory_requests / 10 / rate), CONNECTIONS, use=options.loader)
    redis.delete("celery")
    settle(options.pause)
    before = web_state(server, redis_server, redis)
    done = 0
    while done < options.memory_requests:
        seconds = max(1.0, (options.memory_requests - done) / rate)
        done += load(url, seconds, CONNECTIONS, use=options.loader).requests
        redis.delete("celery")
    settle(options.pause)
    after = web_state(server, redis_server, redis)
    return {"requests": done, "before": before, "after": after}


def web_state(server: Web, redis_server, redis) -> dict[str, int]:
    """Return the web processes' memory, their Redis connections and what waits unread in them."""
    workers = server.workers()
    sockets = sockets_to(workers, redis_server.port)
    clients = redis.client_list()
    return {
        "rss_bytes": rss_bytes(workers),
        "redis_connections": len(sockets),
        "unread_socket_bytes": sum(sockets),
        "redis_clients_total": len(clients),
        "redis_output_buffer_bytes": sum(int(client["omem"]) for client in clients),
        "pubsub_channels": len(redis.pubsub_channels()),
    }


def count_job_page_queries(app) -> dict[str, int]:
    """Store a page of jobs with owners; return how many SQL statements listing them takes."""
    with app.app_context():
        owner = User(name="bench", token_hash="0" * 64)
        db.session.add(owner)
        db.session.add_all(jobs.new_job("async_process", {"steps": 1}, owner)
                           for _ in range(JOB_PAGE))
        db.session.commit()
        statements: list[str] = []

        def record(connection, cursor, statement, *args) -> None:
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = app.test_client().get(f"/api/v1/jobs?per_page={JOB_PAGE}")
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    if response.status_code != 200 or len(response.json) != JOB_PAGE:
        raise RuntimeError(f"listing jobs failed: {response.status_code}")
    return {"jobs": JOB_PAGE, "queries": len(statements)}


def measure_worker(app, env: dict[str, str], redis, work: Path, options) -> dict[str, Any]:
    """Start each worker variant in turn on a pre-loaded queue; return throughput and pickups."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in WORKER_VARIANTS}
    names = list(WORKER_VARIANTS)
    for round_number in range(options.worker_rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(worker_run(app, env, WORKER_VARIANTS[name], redis,
                                         work / f"worker-{name}.log", options))
    return runs


def worker_run(app, env, app_spec: str, redis, log: Path, options) -> dict[str, Any]:
    """Time one worker through a queue of trivial tasks, then time pickups one at a time."""
    redis.delete("celery", "unacked", "unacked_index")
    with app.app_context():
        for _ in range(options.tasks):
            fire_and_forget(very_slow_add, 1, 2)
    if redis.llen("celery") != options.tasks:
        raise RuntimeError("could not pre-load the queue")
    worker = Worker(env, app_spec, log)
    try:
        throughput = drain_rate(worker, redis, options.tasks)
        worker.wait_ready()
        settle(options.pause)
        with app.app_context():
            pickups = [pickup_seconds(worker) for _ in range(options.pickups)]
    finally:
        worker.stop()
    return {"tasks_per_second": round(throughput, 1),
            "pickup_ms": [round(seconds * 1000, 3) for seconds in pickups]}


def drain_rate(worker: Worker, redis, tasks: int) -> float:
    """Watch the queue from the worker's first message to its last acknowledgement; return tasks/s."""
    def queue_moved() -> float | None:
        worker.alive()
        return time.monotonic() if redis.llen("celery") < tasks else None

    first = wait_for(queue_moved, timeout=120, interval=0.005)

    def queue_done() -> float | None:
        worker.alive()
        pipe = redis.pipeline()
        pipe.llen("celery").hlen("unacked")
        return time.monotonic() if sum(pipe.execute()) == 0 else None

    last = wait_for(queue_done, timeout=600, interval=0.005)
    return tasks / (last - first)


def pickup_seconds(worker: Worker) -> float:
    """Queue one job on the idle worker; return the time from its message reaching Redis to its start."""
    job = jobs.new_job("async_process", {"steps": 1})
    db.session.add(job)
    db.session.commit()
    jobs.queue(job, async_process, (1,))
    # From the moment the broker holds the message: what follows is the worker's part.
    published = time.time()

    def finished() -> Job | None:
        worker.alive()
        db.session.expire_all()
        row = db.session.get(Job, job.id)
        return row if row.state == "SUCCESS" else None

    row = wait_for(finished, timeout=30, interval=0.002)
    db.session.rollback()
    settle(0.05)
    return row.started_at.timestamp() - published


def write(results: dict[str, Any], folder: Path, stem: str) -> None:
    """Write the results as JSON and as a Markdown table, and print the table."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = report.markdown(results)
    (folder / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
