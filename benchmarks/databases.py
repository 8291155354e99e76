"""The benchmark's databases: created, migrated by each tree's own migrations, read through SQL.

Nothing here imports the project: a tree migrates its database with its own
Procfile release command, and the benchmark seeds and reads it with
SQLAlchemy Core on the tables it reflects, so the same code serves any ref.
"""
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.processes import Group
from benchmarks.trees import Tree

PRODUCTS, JOBS = "product", "job"
RELEASE = "flask --app wsgi db upgrade"


@contextmanager
def database(server_url: str | None, work: Path, name: str) -> Iterator[str]:
    """Yield the URL of a new, empty database: on server_url's PostgreSQL, or a SQLite file."""
    if not server_url:
        yield f"sqlite:///{work / f'{name}.sqlite'}"
        return
    admin = make_url(server_url).set(drivername="postgresql")
    database_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin_url = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database_name}"')
    try:
        yield admin.set(database=database_name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{database_name}" WITH (FORCE)')


def engine(url: str) -> Engine:
    """Return an engine for url, a database URL as the processes get it (postgres:// too)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


def migrate(tree: Tree, env: dict[str, str], databases: dict[str, str], logs: Path) -> None:
    """Migrate the databases (name to URL) at once, with the tree's Procfile release command."""
    command = tree.procfile().get("release", RELEASE)
    runs = [Group(tree, command, {**env, "DATABASE_URL": url}, logs / f"release-{name}.log")
            for name, url in databases.items()]
    for run in runs:
        if run.process.wait(timeout=300) != 0:
            raise RuntimeError(f"`{command}` failed in {tree.root}:\n{run.output()[-3000:]}")


def seed(url: str, products: int) -> None:
    """Store `products` products, then let the database gather its statistics."""
    connectable = engine(url)
    try:
        table = Table(PRODUCTS, MetaData(), autoload_with=connectable)
        rows = [{"name": f"Product {n}", "description": f"Sample product number {n}."}
                for n in range(1, products + 1)]
        with connectable.begin() as connection:
            for start in range(0, products, 10_000):
                connection.execute(table.insert(), rows[start:start + 10_000])
        # A table this size would have been vacuumed and analysed by now
        # (autovacuum); without it PostgreSQL cannot count from the index alone.
        with connectable.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE" if connectable.name == "postgresql"
                                    else "ANALYZE"))
    finally:
        connectable.dispose()


def jobs_table(connectable: Engine) -> Table:
    """Return the jobs table, as the database describes it."""
    return Table(JOBS, MetaData(), autoload_with=connectable)
