"""The benchmark script runs end to end (`pipenv run bench --quick`), so that it cannot rot.

Nothing here is timed: the figures are the benchmark's business, not the tests'.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from benchmarks.load import python_load
from tests.conftest import missing_service
from tests.services import ROOT


@pytest.fixture
def quick_run(tmp_path) -> dict:
    """Run `python -m benchmarks.bench --quick` into tmp_path; return its JSON results."""
    if shutil.which("redis-server") is None:
        missing_service("the benchmark starts its own redis-server, which is not on PATH")
    command = [sys.executable, "-m", "benchmarks.bench", "--quick", "--output", str(tmp_path)]
    if os.environ.get("TEST_DATABASE_URL"):
        command += ["--database-url", os.environ["TEST_DATABASE_URL"]]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((tmp_path / "quick.json").read_text())


def test_quick_benchmark_measures_every_figure_and_writes_the_table(quick_run, tmp_path):
    summary = quick_run["summary"]
    assert set(summary["rates"]) == set(quick_run["http"])
    assert all(rate > 0 for rate in summary["rates"].values())
    assert summary["job_page_queries"] >= 1
    assert summary["worker_rate"]["ours"] > 0 and summary["worker_rate"]["defaults"] > 0
    assert summary["pickup_ms"]["ours"] > 0
    assert quick_run["memory"]["requests"] >= quick_run["settings"]["memory_requests"]
    table = (tmp_path / "quick.md").read_text()
    assert table.startswith("| measure | this run | target |")
    assert "SQL queries for a page of 100 jobs" in table


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
