"""The documented ways of running the project: `pipenv run dev` and the Procfile."""
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import tomllib
import urllib.request

from click.testing import CliRunner
from flask.cli import FlaskGroup

from config import from_env

from tests.helpers import SHELL_EXPERIMENT, procfile, run_flask_shell
from tests.services import ROOT, free_port, wait_for
from wsgi import create_app


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.load(response)
    except OSError:
        return None


def embedded_environment(tmp_path) -> dict[str, str]:
    """A fresh machine's environment: no Redis, no database server, no .env values."""
    return {
        "APP_ENV": "development", "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "",
        "REDIS_URL": "", "SLOW_ADD_SECONDS": "0.5",
    }


def test_dev_command_runs_api_worker_and_beat_with_no_services(tmp_path):
    scripts = tomllib.loads((ROOT / "Pipfile").read_text())["scripts"]
    # Beat sends housekeeping every second here, so that the test sees it run.
    environment = {**embedded_environment(tmp_path), "PORT": str(free_port()),
                   "HOUSEKEEPING_SECONDS": "1"}
    log = tmp_path / "dev.log"
    with open(log, "wb") as output:
        dev = subprocess.Popen(
            shlex.split(scripts["dev"]), cwd=ROOT, env={**os.environ, **environment},
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{environment['PORT']}/api/v1/products"
        assert wait_for(lambda: get_json(url), timeout=60) == (200, [])
        assert "RESULT 12" in run_flask_shell(environment, SHELL_EXPERIMENT)
        # The worker runs what beat sends, on the embedded broker too.
        wait_for(lambda: "Housekeeping: deleted" in log.read_text(), timeout=30)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=30)
    output = log.read_text(errors="replace")
    assert "Running upgrade" in output and "celery@" in output
    assert "beat: Starting..." in output
    # Nothing that reads like an error to someone trying it out.
    assert "No hostname was supplied" not in output
    assert "Traceback" not in output


def test_release_phase_creates_the_schema_on_a_fresh_database(tmp_path):
    environment = embedded_environment(tmp_path)
    subprocess.run(
        procfile()["release"], shell=True, cwd=ROOT, check=True, timeout=60,
        env={**os.environ, **environment},
    )
    with sqlite3.connect(tmp_path / "development.sqlite") as database:
        tables = {row[0] for row in database.execute("select name from sqlite_master")}
    assert {"product", "user", "alembic_version"} <= tables


def test_migrations_match_the_models(environment):
    # As the flask command loads the app, so that `flask db` is registered.
    flask = FlaskGroup(create_app=lambda: create_app(from_env(environment)), load_dotenv=False)
    result = CliRunner().invoke(flask, ["db", "check"])
    assert result.exit_code == 0, result.output


def test_the_web_process_loads_the_app_without_migration_code(environment):
    # As gunicorn loads wsgi:app. Only `flask db` runs migrations, and Alembic
    # would cost each web process 9 to 11 MiB.
    code = "import sys, wsgi; wsgi.app; print(sorted({'alembic', 'flask_migrate'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **environment},
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert loaded.strip() == "[]"
