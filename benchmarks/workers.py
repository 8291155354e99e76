"""Worker measures: throughput on a pre-loaded queue, and how fast an idle worker picks a job up."""
import json
import queue
import time
from datetime import timezone
from pathlib import Path
from typing import Any, Protocol

from celery import Celery
from sqlalchemy import Engine, Table, select

from benchmarks.databases import engine, jobs_table
from benchmarks.load import get, send
from benchmarks.processes import Worker, settle
from benchmarks.sides import CELERY_QUEUES, Side
from benchmarks.trees import WORKER_APP
from tests.services import wait_for

# This tree's worker with Celery's default delivery settings (celery_defaults.py).
DEFAULTS_APP = "benchmarks.celery_defaults:celery"


def worker_variants(sides: list[Side]) -> dict[str, tuple[Side, str]]:
    """Name each worker to measure: this tree's, with Celery's defaults, and a ref's if any."""
    this, *refs = sides
    variants = {"ours": (this, WORKER_APP), "defaults": (this, DEFAULTS_APP)}
    if refs:
        variants["ref"] = (refs[0], WORKER_APP)
    return variants


def measure_worker(sides: list[Side], work: Path, options) -> dict[str, list[dict[str, Any]]]:
    """Start each worker in turn on a pre-loaded queue; return throughput and pickups."""
    variants = worker_variants(sides)
    task_names = {side.key: queued_task_name(side) for side in sides}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(options.worker_rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            side, app_spec = variants[name]
            runs[name].append(worker_run(side, app_spec, task_names[side.key],
                                         work / f"worker-{name}.log", options))
    return runs


def queued_task_name(side: Side) -> str:
    """List products once; return the name of the task the list queued, as the tree names it."""
    side.clear_queues()
    status, _ = get(side.servers["small"].url + "/api/v1/products")
    message = next(filter(None, (side.redis.lindex(name, 0) for name in CELERY_QUEUES)), None)
    side.clear_queues()
    if status != 200 or message is None:
        raise RuntimeError(f"{side.label}: the product list queued no task to pre-load with")
    return json.loads(message)["headers"]["task"]


def worker_run(side: Side, app_spec: str, task_name: str, log: Path, options) -> dict[str, Any]:
    """Time one worker through a queue of trivial tasks, then time pickups one at a time."""
    side.redis.delete("celery", "unacked", "unacked_index")
    preload(side, task_name, options.tasks)
    worker = Worker(side.tree, {**side.env, "DATABASE_URL": side.databases["small"]}, app_spec,
                    log)
    database = engine(side.databases["small"])
    try:
        throughput = drain_rate(worker, side, options.tasks)
        worker.wait_ready()
        settle(options.pause)
        pickups = timed_pickups(worker, side, database, options.pickups)
    finally:
        worker.stop()
        database.dispose()
    if "unregistered task" in worker.output():
        raise RuntimeError(f"the worker did not know {task_name}: see {log}")
    return {"tasks_per_second": round(throughput, 1),
            "pickup_ms": [round(seconds * 1000, 3) for seconds in pickups]}


def preload(side: Side, task_name: str, tasks: int) -> None:
    """Queue `tasks` calls of task_name(1, 2) that keep no result, on the side's broker."""
    with Celery(set_as_current=False, broker=side.env["REDIS_URL"]) as client:
        for _ in range(tasks):
            client.send_task(task_name, (1, 2), ignore_result=True)
    if side.redis.llen("celery") != tasks:
        raise RuntimeError("could not pre-load the queue")


def drain_rate(worker: Worker, side: Side, tasks: int) -> float:
    """Watch the queue from the worker's first message to its last acknowledgement; return tasks/s."""
    def queue_moved() -> float | None:
        worker.alive()
        return time.monotonic() if side.redis.llen("celery") < tasks else None

    first = wait_for(queue_moved, timeout=120, interval=0.005)

    def queue_done() -> float | None:
        worker.alive()
        pipe = side.redis.pipeline()
        pipe.llen("celery").hlen("unacked")
        return time.monotonic() if sum(pipe.execute()) == 0 else None

    last = wait_for(queue_done, timeout=600, interval=0.005)
    return tasks / (last - first)


class Arrivals:
    """When each message reaches the side's queue, as Redis's keyspace notifications tell."""

    def __init__(self, side: Side) -> None:
        self.redis = side.redis
        self.events = self.redis.config_get("notify-keyspace-events")["notify-keyspace-events"]
        # K: keyspace events, l: list commands; Redis sends none unless told.
        # https://redis.io/docs/latest/develop/use/keyspace-notifications/
        self.redis.config_set("notify-keyspace-events", "Kl")
        self.times: queue.SimpleQueue[float] = queue.SimpleQueue()
        self.pubsub = side.redis.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(**{f"__keyspace@{side.redis_db}__:{name}": self.note
                                 for name in CELERY_QUEUES})
        self.thread = self.pubsub.run_in_thread(sleep_time=0.1, daemon=True)

    def note(self, message: dict[str, Any]) -> None:
        if message["data"] == b"lpush":
            self.times.put(time.time())

    def next(self) -> float:
        """Return when the next message arrived, waiting up to 10 s for it."""
        return self.times.get(timeout=10)

    def clear(self) -> None:
        while not self.times.empty():
            self.times.get()

    def __enter__(self) -> "Arrivals":
        return self

    def __exit__(self, *exc_info) -> None:
        self.thread.stop()
        self.thread.join(timeout=5)
        self.pubsub.close()
        self.redis.config_set("notify-keyspace-events", self.events)


class Watched(Protocol):
    """Worker processes that a pickup watches: alive, and logging to log."""

    log: Path

    def alive(self) -> bool: ...


def timed_pickups(worker: Watched, side: Side, database: Engine, count: int) -> list[float]:
    """Start count jobs one at a time on the idle worker(s); return each one's pickup time."""
    jobs = jobs_table(database)
    with Arrivals(side) as arrivals:
        return [pickup_seconds(worker, side, database, jobs, arrivals) for _ in range(count)]


def pickup_seconds(worker: Watched, side: Side, database: Engine, jobs: Table,
                   arrivals: Arrivals) -> float:
    """Start one job on the idle worker; return the time from its message reaching Redis to its start."""
    arrivals.clear()
    status, body = send(side.servers["small"].url + "/async_process/start", "POST",
                        '{"steps": 1}')
    if status != 202:
        raise RuntimeError(f"POST /async_process/start answered {status}: {body[:500]!r}")
    job_id = json.loads(body)["result_id"]
    # From the moment the broker holds the message: what follows is the worker's part.
    published = arrivals.next()
    state = select(jobs.c.state, jobs.c.started_at).where(jobs.c.id == job_id)

    def finished() -> Any:
        worker.alive()
        with database.connect() as connection:
            row = connection.execute(state).one()
        if row.state == "FAILURE":
            raise RuntimeError(f"job {job_id} failed: see {worker.log}")
        return row if row.state == "SUCCESS" else None

    row = wait_for(finished, timeout=30, interval=0.002)
    settle(0.05)
    # SQLite keeps no time zone; the app stores UTC.
    started = row.started_at if row.started_at.tzinfo else row.started_at.replace(
        tzinfo=timezone.utc)
    return started.timestamp() - published
