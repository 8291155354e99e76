"""Scale-out: one worker instance against two, as one and two worker dynos would run.

Each instance is the Procfile's worker command in a process group of its own,
with a --hostname of its own (two dynos have two host names; here one machine
runs both), on the same Redis and the same database. Round after round, one
instance and then two (the order alternating), each run:

- loads the queue with tasks that sleep (very_slow_add with SLOW_ADD_SECONDS
  set short), so that the machine's two cores are not what limits two
  instances: a run measures how the instances share the queue, not the CPU.
  The tasks are published once every instance is ready, as they would reach
  dynos already running; instances that start at once still become ready up
  to a second apart on a busy machine, which a queue loaded before would
  count against two;
- counts, from each instance's log, how many times each task ran: none may
  run twice or not at all;
- counts the Redis commands (INFO commandstats) a task costs, its publish
  included; the run is watched through the logs, which adds none;
- times pickups, one job at a time, as benchmarks/workers.py does for one
  worker.
"""
import re
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from benchmarks.databases import engine
from benchmarks.processes import Worker, settle
from benchmarks.sides import Side
from benchmarks.trees import WORKER_APP
from benchmarks.workers import timed_pickups
from tests.services import wait_for

TASK = "tasks.very_slow_add"
# Celery's default queue: the shell's very_slow_add.delay goes there, and the worker consumes it.
QUEUE = "celery"
TASK_SECONDS = 0.1
# Celery logs this line for every task that ends well (celery.app.trace.LOG_SUCCESS).
SUCCEEDED = re.compile(r"Task tasks\.very_slow_add\[([0-9a-f-]+)\] succeeded")
INSTANCES = {"one": 1, "two": 2}


class Instances:
    """Worker instances from the Procfile's worker command, each a process group of its own."""

    def __init__(self, side: Side, count: int, work: Path) -> None:
        env = {**side.env, "DATABASE_URL": side.databases["small"],
               "SLOW_ADD_SECONDS": str(TASK_SECONDS)}
        self.log = work / "scaleout-*.log"
        self.workers = [Worker(side.tree, env, WORKER_APP, work / f"scaleout-{number}.log",
                               f"--hostname=scale{number}@%h")
                        for number in range(1, count + 1)]

    def alive(self) -> bool:
        return all(worker.alive() for worker in self.workers)

    def wait_ready(self) -> None:
        for worker in self.workers:
            worker.wait_ready()

    def stop(self) -> None:
        """Stop every instance at once, as separate dynos would be stopped."""
        with ThreadPoolExecutor() as pool:
            list(pool.map(Worker.stop, self.workers))

    def runs(self) -> list[Counter]:
        """Return, for each instance, how many times it ran each task, from its log."""
        return [Counter(SUCCEEDED.findall(worker.output())) for worker in self.workers]


def measure_scaleout(side: Side, work: Path, options) -> dict[str, list[dict[str, Any]]]:
    """Run one instance and two in turn, round after round; return each run's figures."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in INSTANCES}
    names = list(INSTANCES)
    for round_number in range(options.scaleout_rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(scaleout_run(side, INSTANCES[name], work, options))
    return runs


def scaleout_run(side: Side, count: int, work: Path, options) -> dict[str, Any]:
    """Drain a queue of sleeping tasks with count instances, check each ran once, time pickups."""
    side.redis.delete(QUEUE, "unacked", "unacked_index")
    instances = Instances(side, count, work)
    database = engine(side.databases["small"])
    try:
        instances.wait_ready()
        settle(options.pause)
        ids, rate, commands = drain(instances, side, options.scaleout_tasks, options.pause)
        pickups = timed_pickups(instances, side, database, options.pickups)
    finally:
        # Stopped first: a log is complete once its worker has exited.
        instances.stop()
        database.dispose()
    per_instance = instances.runs()
    executions = sum(per_instance, Counter())
    return {"instances": count, "tasks": len(ids), "tasks_per_second": round(rate, 2),
            "ran_per_instance": [sum(runs[task] for task in ids) for runs in per_instance],
            "duplicates": sum(executions[task] - 1 for task in ids if executions[task] > 1),
            "missing": sum(1 for task in ids if executions[task] == 0),
            "redis_commands_per_task": commands,
            "pickup_ms": [round(seconds * 1000, 3) for seconds in pickups]}


def drain(instances: Instances, side: Side, tasks: int,
          pause: float) -> tuple[list[str], float, dict[str, float]]:
    """Publish `tasks` sleeping tasks; return their ids, tasks/s, and Redis commands per task."""
    before = redis_commands(side.redis)
    with Celery(set_as_current=False, broker=side.env["REDIS_URL"]) as client:
        started = time.monotonic()
        ids = [client.send_task(TASK, (1, 2), queue=QUEUE, ignore_result=True).id
               for _ in range(tasks)]

    # Watched in the logs, not in Redis, so that the watching adds no Redis commands.
    def done() -> float | None:
        instances.alive()
        return time.monotonic() if sum(map(len, instances.runs())) >= tasks else None

    try:
        # Five times what one instance of two pool processes needs.
        finished = wait_for(done, timeout=10 + 5 * tasks * TASK_SECONDS / 2, interval=0.005)
    except TimeoutError:
        # A task that never ran: the run reports it as missing.
        finished = time.monotonic()
    # The last acknowledgement follows the last log line (a missing task's may never come).
    with suppress(TimeoutError):
        wait_for(lambda: side.redis.hlen("unacked") == 0, timeout=10, interval=0.05)
    settle(pause)
    sent = redis_commands(side.redis) - before
    return ids, tasks / (finished - started), {command: round(calls / tasks, 2)
                                               for command, calls in sorted(sent.items())}


def redis_commands(client: redis.Redis) -> Counter:
    """Return how many times Redis has run each command, but the INFO that asks."""
    stats = client.info("commandstats")
    return Counter({key.removeprefix("cmdstat_"): value["calls"] for key, value in stats.items()
                    if key != "cmdstat_info"})


def summarise(scaleout: dict[str, Any]) -> dict[str, Any]:
    """Return the medians of the runs, the two-to-one ratio paired by round, and the counts."""
    runs = scaleout["runs"]
    pickups = {name: [ms for run in runs[name] for ms in run["pickup_ms"]] for name in INSTANCES}
    every = [run for name in INSTANCES for run in runs[name]]
    return {
        "tasks_per_second": {name: round(statistics.median(run["tasks_per_second"]
                                                           for run in runs[name]), 2)
                             for name in INSTANCES},
        "ratio": round(statistics.median(two["tasks_per_second"] / one["tasks_per_second"]
                                         for one, two in zip(runs["one"], runs["two"])), 3),
        "duplicates": sum(run["duplicates"] for run in every),
        "missing": sum(run["missing"] for run in every),
        "tasks": sum(run["tasks"] for run in every),
        "pickup_ms": {name: round(statistics.median(values), 3)
                      for name, values in pickups.items()},
    }


def verdicts(summary: dict[str, Any]) -> list[tuple[str, str, str, bool, str, str]]:
    """Return the scale-out rows of the targets' table."""
    rates, pickups = summary["tasks_per_second"], summary["pickup_ms"]
    return [
        (f"Sleeping tasks ({TASK_SECONDS} s) per second, two worker instances against one",
         f"{summary['ratio']:.2f} x ({rates['two']:.1f} / {rates['one']:.1f} tasks/s)",
         ">= 1.8 x", summary["ratio"] >= 1.8, "-", "-"),
        ("Tasks run twice or never, over both instance counts",
         (f"{summary['duplicates']} twice, {summary['missing']} never "
          f"(of {summary['tasks']})"), "0, 0",
         summary["duplicates"] == 0 and summary["missing"] == 0, "-", "-"),
        ("Task pickup on idle workers, median: two instances against one",
         f"{pickups['two']:.2f} ms against {pickups['one']:.2f} ms", "within 1 ms",
         pickups["two"] <= pickups["one"] + 1, "-", "-"),
    ]


def markdown(results: dict[str, Any]) -> list[str]:
    """Return the Markdown of each instance count's figures and of what a request costs."""
    scaleout, settings = results["scaleout"], results["settings"]
    lines = [
        (f"Scale-out, medians of {settings['scaleout_rounds']} interleaved rounds "
         f"({settings['scaleout_tasks']} tasks sleeping {TASK_SECONDS} s, published to idle "
         f"instances of the Procfile's worker, {settings['pickups']} pickups per run):"),
        "",
        "| worker instances | tasks/s | tasks run per instance | run twice | never run "
        "| pickup median | Redis commands per task, its publish included (first round) |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = results["summary"]["scaleout"]
    for name, count in INSTANCES.items():
        runs = scaleout["runs"][name]
        split = " / ".join(str(statistics.median(run["ran_per_instance"][n] for run in runs))
                           for n in range(count))
        lines.append(f"| {count} | {summary['tasks_per_second'][name]:.1f} | {split} "
                     f"| {sum(run['duplicates'] for run in runs)} "
                     f"| {sum(run['missing'] for run in runs)} "
                     f"| {summary['pickup_ms'][name]:.2f} ms "
                     f"| {command_list(runs[0]['redis_commands_per_task'])} |")
    lines += ["", "What one request sends to Redis and the database, on average:", "",
              "| request | SQL statements | Redis commands | bytes left queued in Redis |",
              "|---|---|---|---|"]
    for cost in scaleout["per_request"].values():
        lines.append(f"| {cost['request']} | {cost['sql_statements']:g} "
                     f"| {command_list(cost['redis_commands'])} | {cost['redis_bytes_queued']} |")
    return lines


def command_list(commands: dict[str, float]) -> str:
    """Return e.g. "1 BRPOP, 1 LPUSH, 0.02 others (2.02 in all)": the rare ones as others."""
    listed = [f"{calls:g} {command.upper()}" for command, calls in commands.items()
              if calls >= 0.05]
    others = sum(calls for calls in commands.values() if calls < 0.05)
    if others:
        listed.append(f"{others:.2g} others")
    return f"{', '.join(listed)} ({sum(commands.values()):.4g} in all)"
