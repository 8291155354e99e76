"""The one measure that runs this tree's code in the benchmark's own process.

Everything else reaches the project through its processes, HTTP and SQL;
counting the SQL statements of one request needs the app in hand. Imported
from the project: config.from_env and wsgi.create_app, and the
`flask users token` command.
"""
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import Engine, event

from benchmarks.scaleout import redis_commands
from config import from_env
from wsgi import create_app


def job_page_statements(env: dict[str, str], per_page: int) -> int:
    """Start per_page jobs as one user; return how many SQL statements listing them takes."""
    app = create_app(from_env(env))
    client = app.test_client()
    token = app.test_cli_runner().invoke(args=["users", "token", "bench"]).stdout.split()[-1]
    for _ in range(per_page):
        response = client.post("/async_process/start", json={"steps": 1},
                               headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 202:
            raise RuntimeError(f"starting a job failed: {response.status_code}")
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        with recorded(engine) as statements:
            response = client.get(f"/api/v1/jobs?per_page={per_page}")
        engine.dispose()
    if response.status_code != 200 or len(response.json) != per_page:
        raise RuntimeError(f"listing jobs failed: {response.status_code}")
    return len(statements)


# The requests whose cost to Redis and the database sizes a deployment.
COSTED = {"products": ("GET", "/api/v1/products", None),
          "job_start": ("POST", "/async_process/start", {"steps": 1})}


def request_costs(env: dict[str, str], requests: int) -> dict[str, dict[str, Any]]:
    """Return what one product list and one job start send to Redis and the database, on average.

    Nothing may consume env's Redis database meanwhile: the lists the
    requests push to are measured, then deleted.
    """
    app = create_app(from_env(env))
    client = app.test_client()
    broker = redis.Redis.from_url(env["REDIS_URL"], socket_timeout=5)
    costs = {}
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        for name, (method, path, body) in COSTED.items():
            client.open(path, method=method, json=body)  # Opens the connections: not counted.
            empty_queues(broker)
            before = redis_commands(broker)
            with recorded(engine) as statements:
                answers = [client.open(path, method=method, json=body).status_code
                           for _ in range(requests)]
            sent = redis_commands(broker) - before
            if set(answers) - {200, 202}:
                raise RuntimeError(f"{method} {path} answered {sorted(set(answers))}")
            costs[name] = {"request": f"{method} {path}",
                           "sql_statements": len(statements) / requests,
                           "redis_commands": {command: calls / requests
                                              for command, calls in sorted(sent.items())},
                           "redis_bytes_queued": round(empty_queues(broker) / requests)}
        engine.dispose()
    broker.close()
    return costs


def empty_queues(broker: redis.Redis) -> int:
    """Delete every list (queue) in broker's database; return the bytes of memory they held."""
    held = 0
    for queue in broker.scan_iter(_type="list"):
        held += broker.memory_usage(queue, samples=0) or 0
        broker.delete(queue)
    return held


@contextmanager
def recorded(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements that engine runs inside the block."""
    statements: list[str] = []

    def record(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
