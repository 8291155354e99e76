"""Helpers shared by the test modules."""
import json
import os
import subprocess
import sys
import uuid

import redis

from background.models import Job
from models import db, utcnow
from tests.services import ROOT, wait_for


def procfile(name: str = "Procfile") -> dict[str, str]:
    """Read a Procfile's process types and commands."""
    lines = (ROOT / name).read_text().splitlines()
    return dict(
        line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#")
    )


def job_rows(app) -> list[Job]:
    with app.app_context():
        return db.session.execute(db.select(Job)).scalars().all()


def add_job(app, state: str = "SUCCESS", **values) -> str:
    """Store a job row directly, as the worker would have left it."""
    with app.app_context():
        job = Job(id=str(uuid.uuid4()), name="async_process", parameters={}, state=state,
                  created_at=values.pop("created_at", utcnow()), **values)
        db.session.add(job)
        db.session.commit()
        return job.id


def wait_for_job(client, job_id: str, states=("SUCCESS", "FAILURE", "REVOKED"), timeout=30):
    def reached():
        body = client.get(f"/api/v1/jobs/{job_id}").json
        return body if body["state"] in states else None

    return wait_for(reached, timeout=timeout)


def waiting(url: str, queue: str) -> list[dict]:
    """Return the messages waiting in queue, newest first, as kombu's Redis transport stores them."""
    return [json.loads(raw) for raw in redis.Redis.from_url(url).lrange(queue, 0, -1)]


def run_flask_shell(environment: dict[str, str], code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "shell"], input=code, capture_output=True,
        text=True, cwd=ROOT, env={**os.environ, **environment}, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


SHELL_EXPERIMENT = "from tasks import very_slow_add\njob = very_slow_add.delay(5, 7)\nprint('RESULT', job.wait(timeout=30))\n"
