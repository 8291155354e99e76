"""Measure what the web and worker processes cost on this machine, against their targets.

    pipenv run bench                    # the full run, SQLite, a few minutes
    pipenv run bench --database-url postgresql://postgres@127.0.0.1:5432/postgres
    pipenv run bench --quick            # every measure on tiny settings, in seconds
    pipenv run bench --ref c564b87      # the same, and another commit's code side by side
    pipenv run bench --only scaleout    # one worker instance against two, and a request's costs

It starts its own redis-server on a free port, the Procfile's gunicorn (two
workers) and the Procfile's Celery worker, on fresh databases that it creates,
migrates with the Procfile's release command and drops, and loads them with
wrk (or, without wrk, a slower Python client). Variants are interleaved (A, B,
C, A, B, C ...) and figures are medians of the rounds, so a machine that gets
busier halfway through shifts them all alike. Results go to
benchmarks/results/ as Markdown and JSON.

With --ref, the ref's files are unpacked from git into a temporary folder,
and its own processes (its Procfile's commands, started in that folder) run
on databases of their own, migrated by its own migrations, and on a Redis
database of their own. The variants that mean the same in both trees run
interleaved with this tree's, round by round, and the report sets the two
side by side. From an unpacked archive, which has no git history, --ref
stops at once with a message; the bench without it runs as ever.

The scale-out measure (benchmarks/scaleout.py) runs this tree's worker as one
and as two instances, and counts what a product list and a job start send to
Redis and the database; it runs for this tree only, after the others, or
alone with --only scaleout (results in bench-scaleout.md and .json).
"""
import argparse
import json
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.endpoints import COMPARED, VARIANTS, measure_http, measure_memory, served
from benchmarks.load import loader
from benchmarks.project import job_page_statements, request_costs
from benchmarks.scaleout import measure_scaleout
from benchmarks.sides import Side, started
from benchmarks.trees import ROOT, RefError, Tree, check_out, resolve
from benchmarks.workers import measure_worker
from tests.services import RedisServer, private_redis

RESULTS = ROOT / "benchmarks" / "results"
SMALL_TABLE = 100
JOB_PAGE = 100
# The processes' environment, but for DATABASE_URL and REDIS_URL.
ENV = {"APP_ENV": "production", "SECRET_KEY": "benchmark", "SLOW_ADD_SECONDS": "0",
       "ASYNC_STEP_SECONDS": "0", "WEB_CONCURRENCY": "2", "CELERY_CONCURRENCY": "2"}
# warmup: seconds of load before measuring; pause: seconds of quiet between measures.
FULL = {"rounds": 5, "seconds": 5, "warmup": 1, "pause": 1.0, "rows": 100_000,
        "memory_requests": 20_000, "tasks": 3000, "pickups": 50, "worker_rounds": 3,
        "scaleout_tasks": 400, "scaleout_rounds": 3, "costed_requests": 200}
QUICK = {"rounds": 1, "seconds": 1, "warmup": 0, "pause": 0.1, "rows": 1_000,
         "memory_requests": 300, "tasks": 100, "pickups": 5, "worker_rounds": 1,
         "scaleout_tasks": 20, "scaleout_rounds": 1, "costed_requests": 10}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every measure and write the results; return them."""
    options = parse_arguments(argv)
    started_at = time.monotonic()
    machine = report.machine(options.loader, "PostgreSQL" if options.database_url else "SQLite")

    def step(message: str) -> None:
        print(f"[{time.monotonic() - started_at:5.0f} s] {message}", flush=True)

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        redis_server = stack.enter_context(private_redis(work))
        trees = [("this", "this tree", Tree(ROOT))]
        if options.ref:
            step(f"checking out {options.ref}")
            trees.append(("ref", options.ref, check_out(options.ref, work / "ref")))
        step(f"starting {', '.join(label for _, label, _ in trees)} on fresh databases")
        tables = {"small": SMALL_TABLE} if options.only else {"small": SMALL_TABLE,
                                                               "large": options.rows}
        # Each side has a Redis database of its own on the same server: 0, 1.
        sides = [stack.enter_context(started(key, label, tree, ENV, redis_server, number,
                                             options.database_url, tables, work))
                 for number, (key, label, tree) in enumerate(trees)]
        for side in sides:
            side.wait_ready()
        this, *refs = sides
        results = {"machine": machine, "settings": {key: getattr(options, key) for key in FULL}}
        if not options.only:
            results.update(measure_tree(sides, redis_server, work, options, step))
        step(f"scale-out: {options.costed_requests} costed requests, then "
             f"{options.scaleout_rounds} rounds of one and two worker instances")
        results["scaleout"] = {
            "per_request": request_costs({**this.env, "DATABASE_URL": this.databases["small"]},
                                         options.costed_requests),
            "runs": measure_scaleout(this, work, options),
        }
        if refs:
            results["ref"] = ref_results(refs[0])
        results["summary"] = report.summarise(results)
        results["machine"]["seconds"] = round(time.monotonic() - started_at)
    write(results, options.output,
          ("quick" if options.quick else "bench") + (f"-{options.only}" if options.only else ""))
    return results


def measure_tree(sides: list[Side], redis_server: RedisServer, work: Path, options,
                 step: Callable[[str], None]) -> dict[str, Any]:
    """Measure the HTTP variants, memory, the job page's queries and the worker of every side."""
    this, *refs = sides
    this.variants = list(VARIANTS)
    for ref in refs:
        ref.variants = served(ref, COMPARED)
    step(f"HTTP: {options.rounds} rounds of {sum(len(side.variants) for side in sides)} "
         f"variants, {options.seconds} s each, with {options.loader}")
    measure_http(sides, options)
    step(f"memory: {options.memory_requests} product listings")
    memory = measure_memory(this, redis_server, options)
    step("SQL queries of a page of jobs")
    queries = job_page_statements({**this.env, "DATABASE_URL": this.databases["small"]},
                                  JOB_PAGE)
    this.clear_queues()
    step(f"worker: {options.worker_rounds} rounds of {2 + len(refs)} variants")
    worker = measure_worker(sides, work, options)
    this.clear_queues()
    return {"http": this.http, "web_rss": this.web_rss, "memory": memory,
            "queries": {"jobs": JOB_PAGE, "queries": queries}, "worker": worker}


def ref_results(side: Side) -> dict[str, Any]:
    """Return what was measured of a ref's web processes, and what it is."""
    return {"ref": side.label, "commit": side.tree.commit, "app": side.tree.web_app(),
            "http": side.http, "web_rss": side.web_rss,
            "not_served": [name for name in COMPARED if name not in side.variants]}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings: seconds, not minutes")
    parser.add_argument("--ref", help="also run this git ref's own processes (a commit, branch "
                                      "or tag), interleaved with this tree's, and compare")
    parser.add_argument("--database-url", help="a PostgreSQL server to create the databases on "
                                               "(default: SQLite files)")
    parser.add_argument("--only", choices=("scaleout",),
                        help="run this measure alone, for this tree (not with --ref)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--loader", choices=("wrk", "python"), default=loader(),
                        help="load generator (default: wrk if installed)")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    options = parser.parse_args(argv)
    if options.only and options.ref:
        parser.error(f"--only {options.only} measures this tree alone: leave out --ref")
    if options.ref:
        # Before anything starts: from an unpacked archive, say so at once.
        try:
            resolve(options.ref)
        except RefError as error:
            parser.error(str(error))
    for key, value in (QUICK if options.quick else FULL).items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    return options


def write(results: dict[str, Any], folder: Path, stem: str) -> None:
    """Write the results as JSON and as a Markdown table, and print the table."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = report.markdown(results)
    (folder / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
