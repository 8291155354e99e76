"""What Heroku runs, run here: app.json, the buildpack's inputs, and the Procfile under honcho."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tomllib
import urllib.error
import urllib.request

import pytest
from flask import request

from config import from_env
from tests.helpers import SHELL_EXPERIMENT, procfile, run_flask_shell
from tests.services import ROOT, NoTLS, free_port, private_redis, scratch_database, wait_for
from wsgi import create_app

APP_JSON = json.loads((ROOT / "app.json").read_text())
# What the add-ons in app.json set, as Heroku hands them out.
ADDON_VARIABLES = {"heroku-postgresql": "DATABASE_URL", "heroku-redis": "REDIS_URL"}
# Heroku Key-Value Store mini accepts 20 connections; one web, one worker and
# one beat dyno use 13 to 15 (docs/heroku.md, "Connections"), which leaves room
# for a restart's overlap and a `heroku run flask shell`.
CONNECTION_BUDGET = 16


def test_app_json_runs_one_web_one_worker_and_one_beat_dyno_of_the_procfile():
    formation = APP_JSON["formation"]
    assert {name: process["quantity"] for name, process in formation.items()} == {
        "web": 1, "worker": 1, "beat": 1}
    assert set(formation) <= set(procfile())


def test_procfile_procfile_dev_and_app_json_run_the_same_processes():
    # Procfile.dev's web process upgrades the schema itself, as release does on Heroku.
    assert set(procfile()) == {"web", "release", "worker", "beat"}
    assert set(procfile("Procfile.dev")) == set(APP_JSON["formation"]) == {"web", "worker", "beat"}


@pytest.mark.parametrize("name", ["Procfile", "Procfile.dev"])
def test_beat_runs_as_a_process_of_its_own_never_inside_a_worker(name):
    commands = procfile(name)
    assert "celery -A wsgi:celery beat" in commands["beat"]
    # -B would start a beat in every worker process, so scaling workers would
    # send every periodic task once per worker.
    assert not re.search(r"\s(-B|--beat)\b", commands["worker"])


def test_heroku_page_shows_each_procfile_command_as_it_is():
    page = (ROOT / "docs" / "heroku.md").read_text()
    for name, command in procfile().items():
        assert f"| `{name}` | `{command}` |" in page, name


def test_app_json_provisions_postgres_and_key_value_store_and_generates_the_secret_key():
    plans = [addon["plan"] for addon in APP_JSON["addons"]]
    assert plans == ["heroku-postgresql:essential-0", "heroku-redis:mini"]
    assert APP_JSON["env"]["SECRET_KEY"] == {"description": "Flask's secret key.",
                                             "generator": "secret"}


def test_app_json_and_its_add_ons_give_production_everything_it_needs():
    environ = {name: variable.get("value", "generated") for name, variable in APP_JSON["env"].items()}
    for addon in APP_JSON["addons"]:
        environ[ADDON_VARIABLES[addon["plan"].split(":")[0]]] = "rediss://h:p@example.com:6380"
    environ["DATABASE_URL"] = "postgres://u:p@example.com:5432/d"
    config = from_env(environ)
    assert config["APP_ENV"] == "production" and config["SECRET_KEY"] == "generated"


def test_python_version_file_matches_the_pipfile_and_no_other_package_manager_is_present():
    pipfile = tomllib.loads((ROOT / "Pipfile").read_text())
    assert (ROOT / ".python-version").read_text().strip() == pipfile["requires"]["python_version"]
    # Read from the files, not from git: the suite also runs in an unpacked archive.
    assert (ROOT / "Pipfile.lock").is_file()
    assert "Pipfile.lock" not in (ROOT / ".gitignore").read_text().split()
    for other in ("requirements.txt", "runtime.txt", "poetry.lock", "uv.lock"):
        assert not (ROOT / other).exists(), other


@pytest.mark.skipif(shutil.which("pipenv") is None, reason="pipenv is not on PATH")
def test_pipfile_lock_is_in_sync_with_the_pipfile():
    subprocess.run(["pipenv", "verify"], cwd=ROOT, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("app_env, expected", [("production", "203.0.113.7 https"),
                                                ("development", "127.0.0.1 http")])
def test_forwarded_headers_are_trusted_in_production_only(environment, app_env, expected):
    app = create_app(from_env({**environment, "APP_ENV": app_env, "SECRET_KEY": "x"}))
    app.add_url_rule("/seen", "seen", lambda: f"{request.remote_addr} {request.scheme}")
    response = app.test_client().get(
        "/seen", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7",
                          "X-Forwarded-Proto": "https"})
    assert response.text == expected



@pytest.fixture
def fresh_database(tmp_path):
    """An empty database, named the way Heroku hands it out (postgres://)."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        yield f"sqlite:///{tmp_path / 'heroku.sqlite'}"
        return
    with scratch_database(server_url, "heroku") as database:
        yield database.set(drivername="postgres").render_as_string(hide_password=False)


@pytest.fixture(params=["redis", "rediss"])
def heroku_redis(request, tmp_path):
    """A private Redis; with rediss, TLS only with a self-signed certificate, like Heroku's."""
    try:
        with private_redis(tmp_path, tls=request.param == "rediss") as server:
            yield server
    except NoTLS as reason:
        pytest.skip(f"this machine cannot run a TLS redis-server: {reason}")


def http(method: str, url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(url, data=data, method=method,
                                  headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(call, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_local_heroku_run(tmp_path, fresh_database, heroku_redis):
    port = free_port()
    heroku_env = {
        "APP_ENV": "production", "SECRET_KEY": secrets.token_hex(), "WEB_CONCURRENCY": "2",
        "CELERY_CONCURRENCY": "2", "DATABASE_URL": fresh_database,
        "REDIS_URL": heroku_redis.url, "SLOW_ADD_SECONDS": "0.2", "ASYNC_STEP_SECONDS": "0.05",
        "PYTHONUNBUFFERED": "1", "INSTANCE_PATH": str(tmp_path / "instance"),
        "HOUSEKEEPING_SECONDS": "1",
    }
    env_file = tmp_path / "heroku.env"
    env_file.write_text("\n".join(f"{name}={value}" for name, value in heroku_env.items()))
    environ = {name: value for name, value in os.environ.items() if not name.startswith("TEST_")}

    # The release phase, on an empty database.
    subprocess.run(["honcho", "run", "-e", str(env_file), "bash", "-c", procfile()["release"]],
                   cwd=ROOT, env=environ, check=True, timeout=120, capture_output=True)

    log = tmp_path / "honcho.log"
    with open(log, "wb") as output:
        honcho = subprocess.Popen(
            ["honcho", "start", "-e", str(env_file), "-p", str(port), "web", "worker", "beat"],
            cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                answer = http("GET", f"{base}/health")
            except OSError:
                return None
            return answer if answer[0] == 200 and answer[1]["checks"]["workers"] else None

        assert wait_for(healthy, timeout=90)[1]["status"] == "ok"

        assert http("GET", f"{base}/api/v1/products") == (200, [])
        wait_for(lambda: re.search(r"very_slow_add\[.*\] succeeded", log.read_text()),
                 timeout=30)

        status, started = http("POST", f"{base}/async_process/start", {"steps": 3})
        assert status == 202
        done = wait_for(lambda: (answer := http("GET", f"{base}/async_process/"
                                                        f"{started['result_id']}")[1])["ready"]
                        and answer, timeout=30)
        assert done["successful"] and done["value"] == {"steps": 3}
        # `heroku run flask shell`: the result comes back through the result backend.
        assert "RESULT 12" in run_flask_shell(heroku_env, SHELL_EXPERIMENT)

        # Beat sends housekeeping every second here, and the worker runs it.
        wait_for(lambda: "Housekeeping: deleted" in log.read_text(), timeout=30)

        # Our own client is the one asking for the list.
        clients = [c for c in heroku_redis.client().client_list() if c["cmd"] != "client|list"]
        print(f"FIGURE redis_connections={len(clients)} ({heroku_redis.url.split(':')[0]}, "
              "one web dyno with WEB_CONCURRENCY=2, one worker dyno and one beat dyno)")
        assert len(clients) <= CONNECTION_BUDGET
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=40)
    output = log.read_text()
    assert f"Listening at: http://0.0.0.0:{port}" in output
    assert output.count("Booting worker with pid") == 2
    assert "beat: Starting..." in output
