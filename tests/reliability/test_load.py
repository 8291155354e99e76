"""Load: 32 clients for 30 s against gunicorn, started as the Procfile starts it, with no error.

Each client is a thread with a connection of its own (kept alive when the
server allows it) that mixes reads, writes and job starts; a real worker runs
the jobs. Job starts are
bounded in count (a budget shared by every client) and in time (the load
stops after LOAD_SECONDS), and every job started must finish soon after.
"""
import http.client
import json
import statistics
import threading
import time
import traceback
from random import Random
from typing import Any, NamedTuple

import pytest

from background.models import FINISHED
from models import Product, db
from tests.helpers import job_rows
from tests.services import wait_for

CLIENTS = 32
LOAD_SECONDS = 30
# One web dyno as app.json runs it, and as the README's connection budget assumes.
WEB_CONCURRENCY = 2
# Job starts in all, across every client: enough to keep the worker busy
# throughout, few enough that it can finish them all soon after the load.
MAX_JOB_STARTS = 200
# How long the worker may take, once the load stops, to finish every job started.
JOBS_DRAIN_SECONDS = 20
# A client waits this long for an answer; longer counts as an error (gunicorn
# itself restarts a worker after 30 s).
REQUEST_TIMEOUT = 10
# Products that exist throughout, for reads of products other clients cannot delete.
SEEDED_PRODUCTS = 50
# Below this, the test would pass without having loaded anything.
MIN_REQUESTS = 1000


class Answer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: Any


@pytest.fixture
def environment(environment: dict[str, str]) -> dict[str, str]:
    """The suite's deployment, on its private Redis, with the task every listing fires instant.

    The worker then gets through the thousands of them the listings queue, and
    on to the jobs queued behind them.
    """
    return {**environment, "SLOW_ADD_SECONDS": "0"}


@pytest.fixture
def seeded(app) -> list[int]:
    """Store products that no client deletes, and return their ids."""
    with app.app_context():
        products = [Product(name=f"Seed {n}", description="Read only")
                    for n in range(SEEDED_PRODUCTS)]
        db.session.add_all(products)
        db.session.commit()
        return [product.id for product in products]


class Client:
    """One simulated user: a connection of its own, the products it made, and its tally.

    http.client keeps the connection open between requests when the server
    allows it, and opens a new one when the server closed it.
    """

    def __init__(self, number: int, port: int, auth: dict[str, str], seeded: list[int],
                 job_budget: threading.Semaphore) -> None:
        self.number = number
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        self.auth = auth
        self.seeded = seeded
        self.job_budget = job_budget
        # Seeded per client, so that a failing run can be replayed.
        self.random = Random(number)
        self.mine: list[int] = []
        self.job_ids: list[str] = []
        self.requests = 0
        self.latencies: list[float] = []
        self.new_connections = 0
        self.errors: list[str] = []
        # Operation, weight: mostly reads, as an API's traffic usually is.
        self.mix = [(self.list_products, 30), (self.show_product, 25), (self.list_jobs, 10),
                    (self.create_product, 12), (self.update_product, 10),
                    (self.delete_product, 6), (self.start_job, 7), (self.check_health, 0.1)]

    def run(self, deadline: float) -> None:
        """Send requests, one after the other, until deadline."""
        operations, weights = zip(*self.mix)
        try:
            while time.monotonic() < deadline:
                self.random.choices(operations, weights)[0]()
        except Exception:
            # A bug in the client, not the server; it must not pass unnoticed.
            self.errors.append(f"client {self.number} crashed:\n{traceback.format_exc()}")
        finally:
            self.connection.close()

    def request(self, method: str, path: str, expected: int, body: dict | None = None,
                auth: bool = False) -> Answer | None:
        """Send one request and time it; return the answer, or record an error and return None."""
        headers = {"Accept": "application/json", **(self.auth if auth else {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.new_connections += self.connection.sock is None
        self.requests += 1
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            # The connection is in an unknown state: start the next request afresh.
            self.connection.close()
            self.errors.append(f"{method} {path}: {type(error).__name__}: {error}")
            return None
        self.latencies.append(time.perf_counter() - started)
        if response.status != expected:
            self.errors.append(f"{method} {path}: {response.status}, expected {expected}: "
                               f"{payload[:300]!r}")
            return None
        return Answer(response.status, response.headers, json.loads(payload) if payload else None)

    def expect(self, condition: bool, what: str) -> None:
        """Record an error unless condition holds."""
        if not condition:
            self.errors.append(f"client {self.number}: {what}")

    def list_products(self) -> None:
        page, per_page = self.random.randint(1, 3), self.random.randint(1, 50)
        answer = self.request("GET", f"/api/v1/products?page={page}&per_page={per_page}", 200)
        if answer:
            self.expect(len(answer.body) <= per_page and "X-Total-Count" in answer.headers,
                        f"page {page} of {per_page}: {len(answer.body)} products")

    def show_product(self) -> None:
        # Only products that no other client can delete meanwhile.
        product_id = self.random.choice(self.mine or self.seeded)
        answer = self.request("GET", f"/api/v1/products/{product_id}", 200)
        if answer:
            self.expect(answer.body["id"] == product_id, f"asked {product_id}, got {answer.body}")

    def create_product(self) -> None:
        name = f"Load {self.number}-{self.requests}"
        answer = self.request("POST", "/api/v1/products", 201,
                              {"name": name, "description": "Made under load"}, auth=True)
        if answer:
            self.expect(answer.body["name"] == name
                        and answer.headers["Location"] == f"/api/v1/products/{answer.body['id']}",
                        f"created {name}, got {answer.body} at {answer.headers['Location']}")
            self.mine.append(answer.body["id"])

    def update_product(self) -> None:
        if not self.mine:
            return self.create_product()
        product_id = self.random.choice(self.mine)
        description = f"Changed at {time.monotonic():.6f}"
        answer = self.request("PATCH", f"/api/v1/products/{product_id}", 200,
                              {"description": description}, auth=True)
        if answer:
            self.expect(answer.body["description"] == description, f"patched, got {answer.body}")

    def delete_product(self) -> None:
        if not self.mine:
            return self.create_product()
        product_id = self.mine.pop(self.random.randrange(len(self.mine)))
        if self.request("DELETE", f"/api/v1/products/{product_id}", 204, auth=True):
            # Gone for everyone at once, this client included.
            self.request("GET", f"/api/v1/products/{product_id}", 404)

    def list_jobs(self) -> None:
        self.request("GET", "/api/v1/jobs?per_page=10", 200)

    def check_health(self) -> None:
        # Rare, like a monitor's: it holds a gunicorn worker for the 0.5 s of its ping.
        self.request("GET", "/health", 200)

    def start_job(self) -> None:
        """Start a small job while the shared budget lasts; list products once it is spent."""
        if not self.job_budget.acquire(blocking=False):
            return self.list_products()
        if self.random.random() < 0.5:
            answer = self.request("POST", "/async_process/start", 202, {"steps": 2})
            job_id = answer and answer.body["result_id"]
        else:
            answer = self.request("POST", "/api/v1/jobs/integrate", 202,
                                  {"f": "sqrt(4-xs**2)", "a": 0, "b": 2, "c": 0, "d": 2,
                                   "size": 1000, "seed": len(self.job_ids)})
            job_id = answer and answer.body["id"]
        if job_id:
            self.job_ids.append(job_id)


def percentile(latencies: list[float], percent: int) -> float:
    """Return the latency below which percent of the requests answered, in milliseconds."""
    if len(latencies) < 2:
        return float("nan")
    return statistics.quantiles(latencies, n=100)[percent - 1] * 1000


def unfinished_jobs(app) -> list[str]:
    """Return the ids of the jobs that have not finished yet."""
    return [job.id for job in job_rows(app) if job.state not in FINISHED]


def stored_product_ids(app) -> set[int]:
    """Return the ids of every stored product."""
    with app.app_context():
        return set(db.session.execute(db.select(Product.id)).scalars())


def run_clients(clients: list[Client]) -> float:
    """Run every client in a thread of its own for LOAD_SECONDS; return the seconds it took."""
    started = time.monotonic()
    deadline = started + LOAD_SECONDS
    threads = [threading.Thread(target=client.run, args=(deadline,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        # A request in flight at the deadline may take up to REQUEST_TIMEOUT.
        thread.join(timeout=max(0, deadline - time.monotonic()) + REQUEST_TIMEOUT + 5)
    assert not any(thread.is_alive() for thread in threads), "a client never stopped"
    return time.monotonic() - started


def test_32_clients_for_30_seconds_see_no_error_and_every_job_finishes(
        app, web, worker, auth, seeded):
    # web comes before worker in the arguments, so that gunicorn boots while the worker does.
    port = web.wait_ready()
    job_budget = threading.Semaphore(MAX_JOB_STARTS)
    clients = [Client(number, port, auth, seeded, job_budget) for number in range(CLIENTS)]
    elapsed = run_clients(clients)

    latencies = [seconds for client in clients for seconds in client.latencies]
    errors = [error for client in clients for error in client.errors]
    job_ids = [job_id for client in clients for job_id in client.job_ids]
    requests = sum(client.requests for client in clients)
    print(f"FIGURE load clients={CLIENTS} seconds={LOAD_SECONDS} requests={requests} "
          f"rps={requests / elapsed:.0f} p50_ms={percentile(latencies, 50):.1f} "
          f"p99_ms={percentile(latencies, 99):.1f} errors={len(errors)} job_starts={len(job_ids)}")
    assert errors == [], f"{len(errors)} errors, the first ones:\n" + "\n".join(errors[:20])
    assert requests > MIN_REQUESTS
    assert 0 < len(job_ids) <= MAX_JOB_STARTS
    # Every write acknowledged is stored, and nothing else: no lost or ghost products.
    assert stored_product_ids(app) == {*seeded, *(pid for client in clients for pid in client.mine)}

    drain_started = time.monotonic()
    wait_for(lambda: not unfinished_jobs(app), timeout=JOBS_DRAIN_SECONDS, interval=0.2)
    # gunicorn's default sync worker answers every request with `Connection: close`,
    # so each request opens a connection; a threaded worker would keep them alive.
    print(f"FIGURE load_jobs web_concurrency={WEB_CONCURRENCY} "
          f"new_connections={sum(client.new_connections for client in clients)} "
          f"jobs_drained_s={time.monotonic() - drain_started:.1f}")
    states = {job.id: job.state for job in job_rows(app)}
    assert {states[job_id] for job_id in job_ids} == {"SUCCESS"}
