"""Configuration from the environment."""
import ast
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import text

from background.jobs import run_job
from background.tasks import async_process, integrate
from config import ConfigError, database_uri, from_env, redis_uri
from models import db
from tasks import very_slow_add
from tests.services import ROOT

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "s3cret",
    "DATABASE_URL": "postgres://user:pw@db.example:5432/app",
    "REDIS_URL": "rediss://:pw@kv.example:6380",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
    ],
)
def test_database_url_gets_an_installed_driver(url, expected):
    assert database_uri(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rediss://:pw@h:6380", "rediss://:pw@h:6380?ssl_cert_reqs=none"),
        ("rediss://:pw@h:6380/0?a=1", "rediss://:pw@h:6380/0?a=1&ssl_cert_reqs=none"),
        ("rediss://h:6380?ssl_cert_reqs=required", "rediss://h:6380?ssl_cert_reqs=required"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_tls_redis_url_accepts_herokus_self_signed_certificate(url, expected):
    assert redis_uri(url) == expected


def test_production_uses_heroku_urls_for_database_broker_and_results():
    config = from_env(PRODUCTION)
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://user:pw@db.example:5432/app"
    assert config["CELERY"]["broker_url"] == "rediss://:pw@kv.example:6380?ssl_cert_reqs=none"
    assert config["CELERY"]["result_backend"] == config["CELERY"]["broker_url"]
    assert config["SECRET_KEY"] == "s3cret"
    assert config["TESTING"] is False


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without(variable):
    environ = {**PRODUCTION, variable: ""}
    with pytest.raises(ConfigError, match=variable):
        from_env(environ)


def test_unknown_environment_name_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV"):
        from_env({"APP_ENV": "staging"})


def test_development_defaults_need_no_services(tmp_path):
    config = from_env({"INSTANCE_PATH": str(tmp_path)})
    assert config["APP_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'development.sqlite'}"
    assert config["CELERY"]["broker_url"].startswith("filesystem://")
    assert config["CELERY"]["result_backend"] == (tmp_path / "celery" / "results").as_uri()


def test_celery_settings_use_lowercase_names_only():
    for settings in (from_env(PRODUCTION)["CELERY"], from_env({})["CELERY"]):
        assert all(key == key.lower() for key in settings)


def test_worker_concurrency_follows_celery_concurrency():
    config = from_env({**PRODUCTION, "CELERY_CONCURRENCY": "3"})
    assert config["CELERY"]["worker_concurrency"] == 3


def test_a_worker_on_the_embedded_broker_runs_one_task_at_a_time(tmp_path):
    config = from_env({"INSTANCE_PATH": str(tmp_path), "CELERY_CONCURRENCY": "3"})
    assert config["CELERY"]["worker_concurrency"] == 1


def test_web_process_bounds_every_broker_wait_and_worker_does_not():
    config = from_env(PRODUCTION)
    client = config["CELERY"]["broker_transport_options"]
    worker = config["CELERY_WORKER"]["broker_transport_options"]
    assert client["socket_timeout"] < 1 and client["socket_connect_timeout"] < 1
    assert config["CELERY"]["task_publish_retry_policy"]["max_retries"] <= 1
    assert worker["socket_timeout"] > client["socket_timeout"]
    assert "max_retries" not in worker


def test_a_stopping_worker_hands_tasks_back_before_herokus_sigkill():
    settings = from_env(PRODUCTION)["CELERY"]
    assert 0 < settings["worker_soft_shutdown_timeout"] < 30
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 1


def test_redis_visibility_timeout_outlasts_the_longest_task():
    settings = from_env(PRODUCTION)["CELERY"]
    longest = max(task.time_limit or 0 for task in (integrate, async_process, very_slow_add, run_job))
    assert longest and settings["broker_transport_options"]["visibility_timeout"] > longest


def test_importing_the_factory_reads_no_configuration_and_creates_no_folder(tmp_path):
    # An environment that cannot make a config: only building the app reads it.
    code = ("import os, wsgi\n"
            "from wsgi import create_app\n"
            "print('IMPORTED', os.path.exists(os.environ['INSTANCE_PATH']))\n"
            "wsgi.app\n")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "APP_ENV": "staging", "INSTANCE_PATH": str(tmp_path / "instance")})
    assert "IMPORTED False" in result.stdout, result.stderr
    assert result.returncode != 0 and "ConfigError: APP_ENV must be one of" in result.stderr


def variables_config_reads() -> set[str]:
    """The environment variables that config.py names: environ.get(NAME), environ[NAME],
    setting(NAME) and number(environ, NAME, ...)."""
    tree = ast.parse((ROOT / "config.py").read_text())
    named = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "environ":
            named.append(node.slice)
        elif isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Attribute) and function.attr == "get" \
                    and getattr(function.value, "id", None) == "environ":
                named.append(node.args[0])
            elif getattr(function, "id", None) == "setting":
                named.append(node.args[0])
            elif getattr(function, "id", None) == "number":
                named.append(node.args[1])
    return {node.value for node in named if isinstance(node, ast.Constant)}


def test_env_sample_documents_every_variable_config_reads():
    sample = (ROOT / ".env.sample").read_text()
    documented = set(re.findall(r"^# ([A-Z][A-Z_]+)=", sample, re.MULTILINE))
    assert variables_config_reads() - documented == set()
    assert "DATABASE_URL" in variables_config_reads()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_writes_ahead_and_syncs_only_at_checkpoints(app):
    with app.app_context():
        settings = [db.session.execute(text(f"PRAGMA {name}")).scalar_one()
                    for name in ("journal_mode", "synchronous")]
    assert settings == ["wal", 1]  # 1: NORMAL
