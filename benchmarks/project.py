"""The one measure that runs this tree's code in the benchmark's own process.

Everything else reaches the project through its processes, HTTP and SQL;
counting the SQL statements of one request needs the app in hand. Imported
from the project: config.from_env and wsgi.create_app, and the
`flask users token` command.
"""
from sqlalchemy import event

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
    statements: list[str] = []

    def record(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            response = client.get(f"/api/v1/jobs?per_page={per_page}")
        finally:
            event.remove(engine, "before_cursor_execute", record)
        engine.dispose()
    if response.status_code != 200 or len(response.json) != per_page:
        raise RuntimeError(f"listing jobs failed: {response.status_code}")
    return len(statements)
