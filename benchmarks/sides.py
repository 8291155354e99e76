"""A side of the benchmark: one tree with its own databases, Redis database and web servers."""
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from benchmarks.databases import database, migrate, seed
from benchmarks.processes import Web, rss_bytes
from benchmarks.trees import Tree
from tests.services import RedisServer, free_port

# The lists that the web processes push to and nothing reads while the HTTP
# variants run: the Celery queues (a tree from before the queues by purpose
# has only `celery`), and bench_app's bare LPUSH list.
CELERY_QUEUES = ("celery", "fire-and-forget", "jobs")
QUEUES = (*CELERY_QUEUES, "bench:bare")


@dataclass
class Side:
    """A tree under test, its processes' environment, its databases and their web servers."""

    key: str
    label: str
    tree: Tree
    env: dict[str, str]
    redis_db: int
    redis: redis.Redis
    databases: dict[str, str]
    servers: dict[str, Web]
    variants: list[str] = field(default_factory=list)
    http: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    web_rss: dict[str, int] = field(default_factory=dict)

    def wait_ready(self) -> None:
        """Wait for every web server, then note what the product list's processes hold."""
        for server in self.servers.values():
            server.wait_ready()
        self.note_rss("start")

    def note_rss(self, when: str) -> None:
        self.web_rss[when] = rss_bytes(self.servers["small"].workers())

    def clear_queues(self) -> None:
        self.redis.delete(*QUEUES)


@contextmanager
def started(key: str, label: str, tree: Tree, env: dict[str, str], redis_server: RedisServer,
            redis_db: int, database_url: str | None, tables: dict[str, int],
            work: Path) -> Iterator[Side]:
    """Give tree a database per table size, seeded, and a web server on each; stop and drop them."""
    with ExitStack() as stack:
        databases = {name: stack.enter_context(database(database_url, work, f"{key}_{name}"))
                     for name in tables}
        redis_url = f"{redis_server.url.rsplit('/', 1)[0]}/{redis_db}"
        env = {**env, "REDIS_URL": redis_url}
        migrate(tree, env, {f"{key}-{name}": url for name, url in databases.items()}, work)
        for name, url in databases.items():
            seed(url, tables[name])
        servers = {}
        for name, url in databases.items():
            server = Web(tree, {**env, "DATABASE_URL": url}, free_port(),
                         work / f"web-{key}-{name}.log")
            stack.callback(server.stop)
            servers[name] = server
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        stack.callback(client.close)
        yield Side(key, label, tree, env, redis_db, client, databases, servers)
