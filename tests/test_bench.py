"""The benchmark script runs end to end (`pipenv run bench --quick`), so that it cannot rot.

Nothing here is timed: the figures are the benchmark's business, not the tests'.
"""
import copy
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from argparse import Namespace
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.bench import ENV, parse_arguments
from benchmarks.endpoints import COMPARED, VARIANTS, served, timed_load
from benchmarks.load import python_load
from benchmarks.sides import started
from benchmarks.trees import RefError, check_out, resolve
from benchmarks.workers import queued_task_name, worker_run
from tests.conftest import missing_service
from tests.services import ROOT, private_redis


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def quick_run(output) -> dict:
    """Run `python -m benchmarks.bench --quick` into output; return its JSON results."""
    if shutil.which("redis-server") is None:
        missing_service("the benchmark starts its own redis-server, which is not on PATH")
    command = [sys.executable, "-m", "benchmarks.bench", "--quick", "--output", str(output)]
    if os.environ.get("TEST_DATABASE_URL"):
        command += ["--database-url", os.environ["TEST_DATABASE_URL"]]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((output / "quick.json").read_text())


def test_quick_benchmark_measures_every_figure_and_writes_the_table(quick_run, output):
    summary = quick_run["summary"]
    assert set(summary["rates"]) == set(quick_run["http"])
    assert all(rate > 0 for rate in summary["rates"].values())
    assert summary["job_page_queries"] >= 1
    assert summary["worker_rate"]["ours"] > 0 and summary["worker_rate"]["defaults"] > 0
    assert summary["pickup_ms"]["ours"] > 0
    assert quick_run["memory"]["requests"] >= quick_run["settings"]["memory_requests"]
    table = (output / "quick.md").read_text()
    assert table.startswith("| measure | this run | target |")
    assert "SQL queries for a page of 100 jobs" in table
    assert "Before and after" not in table


def test_quick_benchmark_runs_each_task_once_on_one_and_two_worker_instances(quick_run, output):
    scaleout, summary = quick_run["scaleout"], quick_run["summary"]["scaleout"]
    one, two = scaleout["runs"]["one"][0], scaleout["runs"]["two"][0]
    assert one["ran_per_instance"] == [one["tasks"]]
    # Both instances took tasks from the one queue, and together ran each once.
    assert len(two["ran_per_instance"]) == 2 and min(two["ran_per_instance"]) > 0
    assert sum(two["ran_per_instance"]) == two["tasks"]
    assert summary["duplicates"] == 0 and summary["missing"] == 0
    assert summary["tasks_per_second"]["one"] > 0 and summary["tasks_per_second"]["two"] > 0
    assert summary["ratio"] > 0
    assert len(two["pickup_ms"]) == quick_run["settings"]["pickups"]
    table = (output / "quick.md").read_text()
    assert "| Tasks run twice or never, over both instance counts |" in table
    assert "| worker instances | tasks/s |" in table


def test_quick_benchmark_counts_what_a_request_sends_to_redis_and_the_database(quick_run):
    costs = quick_run["scaleout"]["per_request"]
    assert set(costs) == {"products", "job_start"}
    for cost in costs.values():
        # Each request publishes one task, and its message waits in a queue.
        assert cost["redis_commands"].get("lpush") == 1
        assert cost["redis_bytes_queued"] > 0
        assert cost["sql_statements"] >= 1


def test_report_of_the_scaleout_alone_has_no_http_tables(quick_run):
    results = {key: copy.deepcopy(quick_run[key]) for key in ("machine", "settings", "scaleout")}
    results["summary"] = report.summarise(results)
    table = report.markdown(results)
    assert [row.split(" | ")[0] for row in table.splitlines()[2:5]] == [
        "| Sleeping tasks (0.1 s) per second, two worker instances against one",
        "| Tasks run twice or never, over both instance counts",
        "| Task pickup on idle workers, median: two instances against one",
    ]
    assert "Every HTTP variant" not in table and "no HTTP load" in table


def test_scaleout_alone_refuses_a_ref():
    with pytest.raises(SystemExit) as stopped:
        parse_arguments(["--only", "scaleout", "--ref", "HEAD"])
    assert stopped.value.code == 2


def test_report_sets_a_ref_beside_this_tree_measure_by_measure(quick_run):
    results = copy.deepcopy(quick_run)
    results["ref"] = {"ref": "HEAD", "commit": "0" * 40, "app": "benchmarks.bench_app:app",
                      "http": {name: results["http"][name] for name in COMPARED},
                      "web_rss": results["web_rss"], "not_served": []}
    results["worker"]["ref"] = results["worker"]["ours"]
    results["summary"] = report.summarise(results)
    table = report.markdown(results)
    rows = [line for line in table.splitlines() if line.endswith("| 1.00 |")]
    assert "| measure | ref | this tree | ratio |" in table
    assert [row.split(" | ")[0] for row in rows] == [
        "| GET /api/v1/products, req/s (c=8)",
        "| GET /api/v1/products, web CPU per request (ms)",
        "| POST /async_process/start, req/s (c=8)",
        "| POST /async_process/start, web CPU per request (ms)",
        '| a plain Flask "ok" (the ceiling), req/s (c=8)',
        "| GET /api/v1/products on the large table, req/s (c=8)",
        "| web RSS after start-up (MiB)",
        "| web RSS after the HTTP load (MiB)",
        "| worker, trivial tasks/s",
        "| worker, pickup median (ms)",
    ]


@pytest.fixture
def git_history() -> None:
    """Skip unless this tree is a git clone, whose history a ref comes from."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("comparing with a ref needs git and the project's history (no .git here)")


def test_a_ref_serves_and_works_from_its_own_checkout(tmp_path, git_history):
    if shutil.which("redis-server") is None:
        missing_service("the benchmark starts its own redis-server, which is not on PATH")
    options = Namespace(seconds=0.3, loader="python", tasks=20, pickups=2, pause=0.05)
    tree = check_out("HEAD", tmp_path / "ref")
    with private_redis(tmp_path) as redis_server:
        with started("ref", "HEAD", tree, ENV, redis_server, 1,
                     os.environ.get("TEST_DATABASE_URL"), {"small": 100}, tmp_path) as side:
            side.wait_ready()
            server = side.servers["small"]
            workers = server.workers()
            assert len(workers) == 2
            # The ref's code: its gunicorn workers run in its checkout.
            assert {Path(f"/proc/{pid}/cwd").resolve() for pid in workers} == {tree.root.resolve()}
            assert served(side, COMPARED) == ["products", "job_start", "ceiling"]
            run = timed_load(server, VARIANTS["products"], options)
            worker = worker_run(side, "wsgi:celery", queued_task_name(side),
                                tmp_path / "worker.log", options)
        assert server.process.poll() is not None
    assert run["rate"] > 0 and side.web_rss["start"] > 0
    assert worker["tasks_per_second"] > 0 and len(worker["pickup_ms"]) == 2


def test_a_ref_outside_the_history_is_refused_by_name(git_history):
    with pytest.raises(RefError, match="no such commit"):
        resolve("no-such-ref-for-the-benchmark")


def test_a_tree_without_git_history_refuses_a_ref_with_a_reason(tmp_path):
    unpacked = tmp_path / "unpacked"
    shutil.copytree(ROOT, unpacked, ignore=shutil.ignore_patterns(
        ".git", ".venv", "instance", "test-artifacts", "__pycache__", "node_modules"))
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--quick", "--ref", "HEAD",
                             "--output", str(tmp_path / "results")], cwd=unpacked,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "has none (no .git: an unpacked archive?)" in result.stderr
    assert not (tmp_path / "results").exists()


def test_python_load_generator_counts_answers_and_failures():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ok" else 500)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        good = python_load(f"{url}/ok", 0.3, 2, "GET", "")
        bad = python_load(f"{url}/fail", 0.3, 2, "GET", "")
    finally:
        server.shutdown()
        server.server_close()
    assert good.requests > 0 and good.errors == 0 and good.median_latency > 0
    assert bad.requests > 0 and bad.errors == bad.requests
