"""HTTP measures of the web processes: every variant, round after round, and their memory."""
import statistics
from dataclasses import dataclass
from typing import Any

from benchmarks.load import Load, load, send
from benchmarks.processes import Web, cpu_seconds, rss_bytes, settle, sockets_to
from benchmarks.sides import Side
from tests.services import RedisServer

CONNECTIONS = 8


@dataclass(frozen=True)
class Variant:
    """One HTTP variant: its server (the small or the large table), its request, its connections."""

    server: str
    method: str
    path: str
    body: str = ""
    connections: int = CONNECTIONS


# Throughput is measured with 8 connections; the latency an enqueue adds, with
# one, so that requests waiting for a busy gunicorn worker do not count in it.
VARIANTS = {
    "products": Variant("small", "GET", "/api/v1/products"),
    "enqueue": Variant("small", "GET", "/bench/enqueue"),
    "bare_lpush": Variant("small", "GET", "/bench/bare-lpush"),
    "ceiling": Variant("small", "GET", "/bench/ok"),
    "job_start": Variant("small", "POST", "/async_process/start", '{"steps": 1}'),
    "products_large": Variant("large", "GET", "/api/v1/products"),
    "enqueue_alone": Variant("small", "GET", "/bench/enqueue", connections=1),
    "ceiling_alone": Variant("small", "GET", "/bench/ok", connections=1),
}
# What a ref is measured on too, where it serves them: figures that mean the
# same in any tree, so that the two can be set side by side.
COMPARED = ("products", "job_start", "ceiling", "products_large")


def served(side: Side, names: tuple[str, ...]) -> list[str]:
    """Return the variants among names that the side's web servers serve."""
    found = []
    for name in names:
        variant = VARIANTS[name]
        if variant.server not in side.servers:
            continue
        status, _ = send(side.servers[variant.server].url + variant.path, variant.method,
                         variant.body)
        if status not in (404, 405):
            found.append(name)
    side.clear_queues()
    return found


def measure_http(sides: list[Side], options) -> None:
    """Load every side's variants in turn, round after round; keep each run's figures."""
    units = [(side, name) for side in sides for name in side.variants]
    if options.warmup:
        for side, name in units:
            variant = VARIANTS[name]
            load(side.servers[variant.server].url + variant.path, options.warmup,
                 variant.connections, variant.method, variant.body, options.loader)
    for side in sides:
        side.clear_queues()
        side.http = {name: [] for name in side.variants}
    for round_number in range(options.rounds):
        # Each round starts with another variant, so none always runs first.
        shift = round_number % len(units)
        for side, name in units[shift:] + units[:shift]:
            variant = VARIANTS[name]
            side.http[name].append(timed_load(side.servers[variant.server], variant, options))
            # Nothing consumes the tasks the requests queue; empty the queue
            # so that every run starts alike.
            side.clear_queues()
            settle(options.pause / 3)
    for side in sides:
        side.note_rss("after_load")


def timed_load(server: Web, variant: Variant, options) -> dict[str, float]:
    """Load one path of server; return its rate, median latency and web CPU per request."""
    workers = server.workers()
    cpu_before = cpu_seconds(workers)
    result: Load = load(server.url + variant.path, options.seconds, variant.connections,
                        variant.method, variant.body, options.loader)
    cpu = cpu_seconds(workers) - cpu_before
    if server.workers() != workers:
        raise RuntimeError(f"gunicorn restarted a worker during {variant.path}: see {server.log}")
    if result.errors:
        raise RuntimeError(f"{result.errors} failed requests to {variant.path}: see {server.log}")
    return {"requests": result.requests, "seconds": round(result.seconds, 3),
            "rate": round(result.rate, 1), "median_ms": round(result.median_latency * 1000, 3),
            "cpu_ms_per_request": round(cpu * 1000 / result.requests, 4)}


def measure_memory(side: Side, redis_server: RedisServer, options) -> dict[str, Any]:
    """List products `memory_requests` times; return what the web processes held before and after."""
    server = side.servers["small"]
    rate = statistics.median(run["rate"] for run in side.http["products"])
    url = server.url + VARIANTS["products"].path
    # Warm-up first: the first requests import and cache for good, which is not growth.
    if options.warmup:
        load(url, max(1.0, options.memory_requests / 10 / rate), CONNECTIONS, use=options.loader)
    side.clear_queues()
    settle(options.pause)
    before = web_state(server, redis_server, side)
    done = 0
    while done < options.memory_requests:
        seconds = max(1.0, (options.memory_requests - done) / rate)
        done += load(url, seconds, CONNECTIONS, use=options.loader).requests
        side.clear_queues()
    settle(options.pause)
    after = web_state(server, redis_server, side)
    return {"requests": done, "before": before, "after": after}


def web_state(server: Web, redis_server: RedisServer, side: Side) -> dict[str, int]:
    """Return the web processes' memory, their Redis connections and what waits unread in them."""
    workers = server.workers()
    sockets = sockets_to(workers, redis_server.port)
    # The side's own Redis database: another side's processes use another.
    clients = [client for client in side.redis.client_list()
               if int(client["db"]) == side.redis_db]
    return {
        "rss_bytes": rss_bytes(workers),
        "redis_connections": len(sockets),
        "unread_socket_bytes": sum(sockets),
        "redis_clients_total": len(clients),
        "redis_output_buffer_bytes": sum(int(client["omem"]) for client in clients),
        "pubsub_channels": len(side.redis.pubsub_channels()),
    }
