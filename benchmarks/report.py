"""Turn the benchmark's runs into figures, verdicts against their targets, and Markdown."""
import os
import platform
import statistics
import subprocess
from importlib.metadata import version
from typing import Any

from benchmarks import scaleout

# The job start figure of pallets/flask's examples/celery (POST /tasks/add,
# c=8), measured earlier on this machine. That example is not part of this
# repository, so it is not run here: the target is 1.5 times this figure.
PEER_JOB_START_RATE = 567
MiB = 2**20
PACKAGES = ("celery", "kombu", "redis", "gunicorn", "flask", "sqlalchemy", "psycopg")


def machine(loader: str, database: str) -> dict[str, Any]:
    """Describe the machine and the software the figures were measured with."""
    redis_server = subprocess.run(["redis-server", "--version"], capture_output=True,
                                  text=True, check=False).stdout.split()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **{package: version(package) for package in PACKAGES},
        "redis_server": next((word[2:] for word in redis_server if word.startswith("v=")), "?"),
        "database": database,
        "loader": loader,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def median(values) -> float:
    return statistics.median(list(values))


def ratio(a: float, b: float) -> float:
    """Return a / b, or NaN where b is 0 (a CPU figure under /proc's 10 ms tick)."""
    return a / b if b else float("nan")


def paired(runs: dict[str, list[dict]], a: str, b: str, figure: str, combine) -> float:
    """Return the median over rounds of combine(a's figure, b's figure) in the same round."""
    return median(combine(x[figure], y[figure]) for x, y in zip(runs[a], runs[b]))


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Return the headline figures of the measures that ran (all, or the scale-out alone)."""
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    summary = summarise_tree(results) if "http" in results else {}
    if "scaleout" in results:
        summary["scaleout"] = scaleout.summarise(results["scaleout"])
    return summary


def summarise_tree(results: dict[str, Any]) -> dict[str, Any]:
    """Return the HTTP, memory and worker figures: medians of the runs, and of paired ratios."""
    http, memory, worker = results["http"], results["memory"], results["worker"]
    before, after = memory["before"], memory["after"]
    pickups = {name: [ms for run in runs for ms in run["pickup_ms"]] for name, runs in worker.items()}
    return {
        "rates": {name: round(median(run["rate"] for run in runs), 1)
                  for name, runs in http.items()},
        "cpu_ms_per_request": {name: round(median(run["cpu_ms_per_request"] for run in runs), 4)
                               for name, runs in http.items()},
        "median_latency_ms": {name: round(median(run["median_ms"] for run in runs), 3)
                              for name, runs in http.items()},
        "enqueue_cpu_ms": round(paired(http, "enqueue", "ceiling", "cpu_ms_per_request",
                                       lambda a, b: a - b), 4),
        "bare_lpush_cpu_ms": round(paired(http, "bare_lpush", "ceiling", "cpu_ms_per_request",
                                          lambda a, b: a - b), 4),
        "enqueue_latency_ms": round(paired(http, "enqueue_alone", "ceiling_alone", "median_ms",
                                           lambda a, b: a - b), 3),
        "products_vs_ceiling": round(paired(http, "products", "ceiling", "rate",
                                            lambda a, b: a / b), 3),
        "large_table_slowdown": round(paired(http, "products", "products_large", "rate",
                                             lambda a, b: a / b), 3),
        "job_start_rate": round(median(run["rate"] for run in http["job_start"]), 1),
        "web_rss_bytes": results["web_rss"],
        "rss_growth_bytes_per_request": round(
            (after["rss_bytes"] - before["rss_bytes"]) / memory["requests"], 1),
        "unread_socket_bytes": after["unread_socket_bytes"],
        "redis_connections": [before["redis_connections"], after["redis_connections"]],
        "job_page_queries": results["queries"]["queries"],
        "worker_rate": {name: round(median(run["tasks_per_second"] for run in runs), 1)
                        for name, runs in worker.items()},
        "pickup_ms": {name: round(median(values), 3) for name, values in pickups.items()},
        "pickup_p90_ms": {name: round(statistics.quantiles(values, n=10)[-1], 3)
                          if len(values) > 1 else values[0] for name, values in pickups.items()},
        "before_after": before_and_after(results),
    }


# The HTTP figures set side by side with a ref's: variant, figure, measure.
COMPARED_FIGURES = (
    ("products", "rate", "GET /api/v1/products, req/s (c=8)"),
    ("products", "cpu_ms_per_request", "GET /api/v1/products, web CPU per request (ms)"),
    ("job_start", "rate", "POST /async_process/start, req/s (c=8)"),
    ("job_start", "cpu_ms_per_request", "POST /async_process/start, web CPU per request (ms)"),
    ("ceiling", "rate", "a plain Flask \"ok\" (the ceiling), req/s (c=8)"),
    ("products_large", "rate", "GET /api/v1/products on the large table, req/s (c=8)"),
)


def before_and_after(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return this tree's figures beside the ref's, and the ratio this / ref (none without a ref)."""
    ref = results.get("ref")
    if ref is None:
        return []
    rows = []
    for name, figure, measure in COMPARED_FIGURES:
        if name in ref["http"]:
            ours, theirs = results["http"][name], ref["http"][name]
            rows.append({"measure": measure, "unit": figure,
                         "ref": median(run[figure] for run in theirs),
                         "this": median(run[figure] for run in ours),
                         # The median of per-round ratios: the two runs of a round met
                         # the same machine, however busy it was.
                         "ratio": median(ratio(a[figure], b[figure])
                                         for a, b in zip(ours, theirs))})
    for when, measure in (("start", "web RSS after start-up (MiB)"),
                          ("after_load", "web RSS after the HTTP load (MiB)")):
        theirs, ours = ref["web_rss"][when] / MiB, results["web_rss"][when] / MiB
        rows.append({"measure": measure, "unit": "MiB", "ref": theirs, "this": ours,
                     "ratio": ratio(ours, theirs)})
    worker = results["worker"]
    if "ref" in worker:
        for figure, measure, value in (
                ("tasks_per_second", "worker, trivial tasks/s",
                 lambda runs: median(run["tasks_per_second"] for run in runs)),
                ("pickup_ms", "worker, pickup median (ms)",
                 lambda runs: median(ms for run in runs for ms in run["pickup_ms"]))):
            theirs, ours = value(worker["ref"]), value(worker["ours"])
            rows.append({"measure": measure, "unit": figure, "ref": theirs, "this": ours,
                         "ratio": ratio(ours, theirs)})
    return rows


def verdicts(summary: dict[str, Any]) -> list[tuple[str, str, str, bool, str, str]]:
    """Return the targets' table: measure, this run, target, met, naive figure, peer figure."""
    rows = tree_verdicts(summary) if "rates" in summary else []
    return rows + (scaleout.verdicts(summary["scaleout"]) if "scaleout" in summary else [])


def tree_verdicts(summary: dict[str, Any]) -> list[tuple[str, str, str, bool, str, str]]:
    """Return the targets of the HTTP, memory and worker measures."""
    rates, pickups = summary["rates"], summary["pickup_ms"]
    workers = summary["worker_rate"]
    peer_target = 1.5 * PEER_JOB_START_RATE
    return [
        ("CPU cost of an enqueue (web CPU per request of very_slow_add.apply_async(..., "
         "ignore_result=True) minus a plain \"ok\")",
         (f"{summary['enqueue_cpu_ms']:.2f} ms (one bare LPUSH: "
          f"{summary['bare_lpush_cpu_ms']:.2f} ms)"), "<= 0.3 ms",
         summary["enqueue_cpu_ms"] <= 0.3, "1.2 ms", "1.1 ms"),
        ("GET /api/v1/products as a fraction of a plain Flask endpoint (req/s, c=8)",
         (f"{summary['products_vs_ceiling']:.2f} ({rates['products']:.0f} / "
          f"{rates['ceiling']:.0f} req/s)"), ">= 0.4", summary["products_vs_ceiling"] >= 0.4,
         "0.12", "-"),
        ("Median latency an enqueue adds to a request, one connection",
         f"{summary['enqueue_latency_ms']:.2f} ms", "<= 1 ms",
         summary["enqueue_latency_ms"] <= 1, "-", "-"),
        ("Web process growth per request over the listings: RSS, unread Redis bytes",
         (f"{summary['rss_growth_bytes_per_request']:.0f} B/req, "
          f"{summary['unread_socket_bytes']} B unread"),
         "<= 50 B/req, 0 unread",
         summary["rss_growth_bytes_per_request"] <= 50 and summary["unread_socket_bytes"] == 0,
         "372 + 169 B/req", "367 + 169 B/req"),
        ("Redis connections of the web processes, before and after",
         " -> ".join(map(str, summary["redis_connections"])), "flat",
         summary["redis_connections"][1] <= summary["redis_connections"][0], "grows", "grows"),
        ("Job start: POST /async_process/start incl. the job row (req/s, c=8)",
         f"{summary['job_start_rate']:.0f} req/s",
         f">= {peer_target:.0f} (1.5 x the pallets example's {PEER_JOB_START_RATE})",
         summary["job_start_rate"] >= peer_target, "-", f"{PEER_JOB_START_RATE} req/s"),
        ("Task pickup on an idle worker, median (message in Redis to task start)",
         f"{pickups['ours']:.2f} ms", "<= 2 ms", pickups["ours"] <= 2, "3.8 ms", "3.7 ms"),
        ("Trivial-task throughput of one worker, pre-loaded queue (acks_late, prefetch 1)",
         f"{workers['ours']:.0f} tasks/s (Celery's defaults: {workers['defaults']:.0f})",
         ">= the defaults' figure", workers["ours"] >= workers["defaults"],
         "511 tasks/s (defaults)", "-"),
        ("GET /api/v1/products page 1: 100 rows vs the large table (slowdown)",
         f"{summary['large_table_slowdown']:.2f} x", "<= 1.5 x",
         summary["large_table_slowdown"] <= 1.5, "-", "-"),
        ("SQL queries for a page of 100 jobs", str(summary["job_page_queries"]), "<= 2",
         summary["job_page_queries"] <= 2, "-", "-"),
    ]


def markdown(results: dict[str, Any]) -> str:
    """Return the results as Markdown: targets, the measures' tables, the machine."""
    summary, settings, machine_info = results["summary"], results["settings"], results["machine"]
    lines = [
        "| measure | this run | target | met | a naive solution | pallets' Celery example |",
        "|---|---|---|---|---|---|",
    ]
    for measure, figure, target, met, naive, peer in verdicts(summary):
        lines.append(f"| {measure} | {figure} | {target} | {'yes' if met else '**no**'} "
                     f"| {naive} | {peer} |")
    if "http" in results:
        lines += tree_tables(results)
    if "scaleout" in results:
        lines += ["", *scaleout.markdown(results)]
    lines += ["", machine_line(machine_info, settings, http="http" in results), ""]
    return "\n".join(lines)


def tree_tables(results: dict[str, Any]) -> list[str]:
    """Return the Markdown of a ref beside this tree, every variant, memory and the worker."""
    summary, settings = results["summary"], results["settings"]
    lines = ["", ("The last two columns were measured earlier on this machine, for a naive "
                  "solution of the exercise and for pallets/flask's examples/celery; neither "
                  "is run here.")]
    if "ref" in results:
        lines += ["", *before_and_after_table(results)]
    lines += [
        "",
        (f"Every HTTP variant, medians of {settings['rounds']} interleaved rounds of "
         f"{settings['seconds']} s, 8 concurrent connections unless said otherwise:"),
        "",
        "| variant | req/s | median latency | web CPU per request |",
        "|---|---|---|---|",
    ]
    for name, description in VARIANTS.items():
        lines.append(f"| {description} | {summary['rates'][name]:.0f} "
                     f"| {summary['median_latency_ms'][name]:.2f} ms "
                     f"| {summary['cpu_ms_per_request'][name]:.3f} ms |")
    memory, rss = results["memory"], summary["web_rss_bytes"]
    lines += [
        "",
        (f"Web processes of the product list: {rss['start'] / MiB:.1f} MiB after start-up, "
         f"{rss['after_load'] / MiB:.1f} MiB after the HTTP variants. Over "
         f"{memory['requests']} more listings (after a warm-up):"),
        "",
        "| | RSS | Redis connections | unread socket bytes | Redis output buffers | pub/sub channels |",
        "|---|---|---|---|---|---|",
    ]
    for when in ("before", "after"):
        state = memory[when]
        lines.append(f"| {when} | {state['rss_bytes'] / MiB:.1f} MiB "
                     f"| {state['redis_connections']} | {state['unread_socket_bytes']} "
                     f"| {state['redis_output_buffer_bytes']} | {state['pubsub_channels']} |")
    lines += [
        "",
        (f"Worker, medians of {settings['worker_rounds']} rounds each "
         f"({settings['tasks']} pre-loaded tasks, {settings['pickups']} pickups per round):"),
        "",
        "| worker settings | tasks/s | pickup median | pickup 90th percentile |",
        "|---|---|---|---|",
    ]
    workers = dict(WORKERS)
    if "ref" in results:
        workers["ref"] = f"{results['ref']['ref']}'s own (its Procfile's worker)"
    for name in summary["worker_rate"]:
        lines.append(f"| {workers[name]} | {summary['worker_rate'][name]:.0f} "
                     f"| {summary['pickup_ms'][name]:.2f} ms "
                     f"| {summary['pickup_p90_ms'][name]:.2f} ms |")
    return lines


def before_and_after_table(results: dict[str, Any]) -> list[str]:
    """Return the Markdown of this tree's figures beside the ref's."""
    ref, settings = results["ref"], results["settings"]
    missing = [VARIANTS[name] for name in ref["not_served"]]
    lines = [
        (f"Before and after: this tree against {ref['ref']} (commit {ref['commit'][:10]}, "
         f"serving {ref['app']} with its own Procfile, migrations and worker), interleaved "
         f"round by round; medians of {settings['rounds']} rounds, and the ratio this tree / "
         f"ref paired within each round for the HTTP figures"
         + (f"; {ref['ref']} does not serve: {'; '.join(missing)}" if missing else "") + ":"),
        "",
        "| measure | ref | this tree | ratio |",
        "|---|---|---|---|",
    ]
    for row in results["summary"]["before_after"]:
        digits = {"rate": 0, "tasks_per_second": 0, "MiB": 1}.get(row["unit"], 3)
        lines.append(f"| {row['measure']} | {row['ref']:.{digits}f} | {row['this']:.{digits}f} "
                     f"| {row['ratio']:.2f} |")
    return lines


def machine_line(info: dict[str, Any], settings: dict[str, Any], http: bool) -> str:
    load = (f"{info['database']} ({settings['rows']} rows in the large table), load from "
            f"{info['loader']}" if http else f"{info['database']}, no HTTP load")
    return (f"Measured on {info['cpus']} CPUs, Python {info['python']}, Celery {info['celery']}, "
            f"kombu {info['kombu']}, redis-py {info['redis']}, gunicorn {info['gunicorn']} "
            f"(2 sync workers), Redis {info['redis_server']}, {load}; "
            f"load average {info['load_average_at_start']} at the start, "
            f"{info['load_average_at_end']} at the end; {info.get('seconds', '?')} s in all.")


VARIANTS = {
    "products": "GET /api/v1/products (queues very_slow_add)",
    "enqueue": "GET /bench/enqueue: very_slow_add.apply_async((1, 2), ignore_result=True) alone",
    "bare_lpush": "GET /bench/bare-lpush: one bare redis-py LPUSH alone",
    "ceiling": "GET /bench/ok: a plain Flask \"ok\" under the same gunicorn (the ceiling)",
    "job_start": "POST /async_process/start (job row + publish)",
    "products_large": "GET /api/v1/products on the large table",
    "enqueue_alone": "GET /bench/enqueue, one connection",
    "ceiling_alone": "GET /bench/ok, one connection",
}
WORKERS = {
    "ours": "this project's (acks_late, prefetch 1)",
    "defaults": "Celery's defaults (early ack, prefetch 4)",
}
