"""Jobs as rows: the async process, integration jobs, listing and cancelling."""
import math
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event

from background.expression import ALLOWED
from background.polling import check_status_or_begin
from models import User, db, utcnow
from tasks import very_slow_add
from tests.conftest import DATABASES
from tests.helpers import add_job, job_rows, wait_for_job
from tests.services import Worker, hanging_listener, refusing_port, wait_for

PI_JOB = {"f": "sqrt(4-xs**2)", "a": 0, "b": 2, "c": 0, "d": 2, "size": 1_000_000, "seed": 1}


def test_async_process_reports_progress_then_its_value(client, worker):
    response = client.post("/async_process/start", json={"steps": 5})
    assert response.status_code == 202
    job_id = response.json["result_id"]
    assert response.headers["Location"] == f"/async_process/{job_id}"

    seen = []

    def done():
        status = client.get(f"/async_process/{job_id}").json
        seen.append(status)
        return status["ready"]

    wait_for(done, timeout=30)
    assert seen[-1] == {
        "ready": True, "successful": True, "value": {"steps": 5}, "state": "SUCCESS",
        "progress": {"current": 5, "total": 5}, "error": None,
    }
    running = [status for status in seen if status["state"] == "PROGRESS"]
    assert all(not s["ready"] and s["value"] is None for s in running)
    assert {s["progress"]["current"] for s in running} & {1, 2, 3, 4}


def test_async_process_without_a_body_takes_10_steps(make_app, redis_server):
    app = make_app(REDIS_URL=redis_server.url)
    response = app.test_client().post("/async_process/start")
    assert response.status_code == 202
    (job,) = job_rows(app)
    assert (job.id, job.parameters, job.state) == (response.json["result_id"], {"steps": 10}, "PENDING")
    assert redis_server.client().llen("jobs") == 1


@pytest.mark.parametrize("body", [{"steps": 0}, {"steps": 101}, {"steps": "5"}, {"steps": 1.5},
                                  {"steps": None}, {"stops": 3}, [3]])
def test_async_process_with_bad_steps_returns_422_and_starts_nothing(client, app, body):
    response = client.post("/async_process/start", json=body)
    assert response.status_code == 422
    assert response.json["code"] == 422 and response.json["errors"]
    assert job_rows(app) == []


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "abc", "123", "0" * 40])
def test_status_of_a_job_nobody_started_is_404(client, job_id):
    for path in (f"/async_process/{job_id}", f"/api/v1/jobs/{job_id}"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json["code"] == 404


def test_integration_job_estimates_pi_reproducibly(client, worker):
    estimates = []
    for _ in range(2):
        response = client.post("/api/v1/jobs/integrate", json=PI_JOB)
        assert response.status_code == 202
        assert response.headers["Location"] == f"/api/v1/jobs/{response.json['id']}"
        assert response.json["state"] == "PENDING" and response.json["name"] == "integrate"
        job = wait_for_job(client, response.json["id"])
        assert job["state"] == "SUCCESS" and job["ready"] and job["successful"]
        assert job["result"]["samples"] == 1_000_000
        estimates.append(job["result"]["estimate"])
    assert abs(estimates[0] - math.pi) < 0.01
    assert estimates[0] == estimates[1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"f": "__import__('os').system('id')"}, "f"),
        ({"f": "x.__class__"}, "f"),
        ({"f": "9**9**9**9"}, "f"),
        ({"f": "x" * 501}, "f"),
        ({"f": 42}, "f"),
        ({"a": 2, "b": 0}, "b"),
        ({"c": 1, "d": 1}, "d"),
        ({"a": "0"}, "a"),
        ({"a": -1e308, "b": 1e308}, "b"),
        ({"size": 0}, "size"),
        ({"size": 10_000_001}, "size"),
        ({"size": "100"}, "size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_integration_returns_422_naming_the_field(client, app, change, field):
    response = client.post("/api/v1/jobs/integrate", json={**PI_JOB, **change})
    assert response.status_code == 422
    assert field in response.json["errors"]
    assert job_rows(app) == []


def test_refused_expression_is_named_in_the_error(client):
    response = client.post("/api/v1/jobs/integrate", json={**PI_JOB, "f": "open('/etc/passwd')"})
    assert response.json["errors"]["f"] == [f"Calls to 'open' are not allowed. {ALLOWED}"]


def test_nan_in_the_box_returns_422(client, app):
    response = client.post(
        "/api/v1/jobs/integrate", data='{"f": "x", "a": NaN, "b": 1, "c": 0, "d": 1}',
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "a" in response.json["errors"]


def test_failed_job_reports_its_error_as_json(app, client, worker):
    with app.test_request_context("/tests/failing-sum"):
        status, job_id = check_status_or_begin(very_slow_add, ("one", 2))
    assert status == "started"
    job = wait_for_job(client, job_id)
    assert job["state"] == "FAILURE" and job["ready"] and not job["successful"]
    assert job["error"]["type"] == "TypeError"
    assert "str" in job["error"]["message"] and "Traceback" not in job["error"]["message"]
    assert client.get(f"/async_process/{job_id}").json == {
        "ready": True, "successful": False, "value": None, "state": "FAILURE",
        "progress": None, "error": job["error"],
    }


def test_cancel_terminates_a_running_job(client, worker):
    job_id = client.post("/async_process/start", json={"steps": 100}).json["result_id"]
    wait_for_job(client, job_id, states=("PROGRESS",))

    response = client.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 202
    assert response.json["state"] == "REVOKED" and response.json["ready"]
    wait_for(lambda: f"Terminating {job_id}" in worker.output())
    assert client.get(f"/api/v1/jobs/{job_id}").json["state"] == "REVOKED"


def test_a_job_cancelled_while_queued_never_runs(make_app, redis_server, environment):
    app = make_app(REDIS_URL=redis_server.url)
    client = app.test_client()
    job_id = client.post("/async_process/start", json={"steps": 1}).json["result_id"]
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202

    worker = Worker({**environment, "REDIS_URL": redis_server.url})
    try:
        wait_for(lambda: "was cancelled or removed" in worker.output(), timeout=30)
    finally:
        worker.stop()
    job = client.get(f"/api/v1/jobs/{job_id}").json
    assert job["state"] == "REVOKED" and job["started_at"] is None and job["progress"] is None


@pytest.mark.parametrize("state", ["SUCCESS", "FAILURE", "REVOKED"])
def test_cancelling_a_finished_job_returns_409(client, app, state):
    job_id = add_job(app, state)
    response = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert response.json["code"] == 409
    assert job_rows(app)[0].state == state


def test_jobs_are_listed_newest_first_a_page_at_a_time(client, app):
    now = utcnow()
    ids = [add_job(app, "SUCCESS" if n % 2 else "PENDING", created_at=now + timedelta(seconds=n))
           for n in range(5)]
    response = client.get("/api/v1/jobs?per_page=2&page=1")
    assert response.status_code == 200
    assert [job["id"] for job in response.json] == [ids[4], ids[3]]
    assert response.headers["X-Total-Count"] == "5"
    assert 'page=3>; rel="last"' in response.headers["Link"]

    filtered = client.get("/api/v1/jobs?state=SUCCESS")
    assert [job["id"] for job in filtered.json] == [ids[3], ids[1]]
    assert 'state=SUCCESS' in filtered.headers["Link"]


@pytest.mark.parametrize("query", ["state=DONE", "state=", "page=0", "per_page=500"])
def test_bad_job_listing_query_returns_400(client, query):
    assert client.get(f"/api/v1/jobs?{query}").status_code == 400


def test_a_page_of_jobs_is_one_query_plus_the_count(client, app):
    with app.app_context():
        owner = User(name="carol", token_hash="0" * 64)
        db.session.add(owner)
        db.session.commit()
        owner_id = owner.id
    for _ in range(30):
        add_job(app, owner_id=owner_id)
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    response = client.get("/api/v1/jobs?per_page=100")
    assert len(response.json) == 30 and response.json[0]["owner"] == "carol"
    assert len(statements) <= 2


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
@pytest.mark.parametrize(("path", "body"), [("/async_process/start", {"steps": 1}),
                                            ("/api/v1/jobs/integrate", {**PI_JOB, "size": 10})])
def test_a_job_start_writes_its_row_and_reads_nothing_back(client, app, path, body):
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    response = client.post(path, json=body)
    assert response.status_code == 202
    assert statements == ["INSERT"]
    (job,) = job_rows(app)
    assert job.id == response.json.get("result_id", response.json.get("id"))


def test_a_token_makes_its_user_the_owner(client, app, auth, make_app, redis_server):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    owned = client.post("/async_process/start", json={"steps": 1}, headers=auth)
    anonymous = client.post("/async_process/start", json={"steps": 1})
    integration = client.post("/api/v1/jobs/integrate", json={**PI_JOB, "size": 10})
    owned_integration = client.post("/api/v1/jobs/integrate", json={**PI_JOB, "size": 10},
                                    headers=auth)
    assert client.get(f"/api/v1/jobs/{owned.json['result_id']}").json["owner"] == "alice"
    assert client.get(f"/api/v1/jobs/{anonymous.json['result_id']}").json["owner"] is None
    assert integration.json["owner"] is None
    assert owned_integration.json["owner"] == "alice"


def test_a_wrong_token_on_a_job_start_returns_401_and_starts_nothing(client, app):
    response = client.post("/async_process/start", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert job_rows(app) == []


@pytest.mark.parametrize("broken_broker", [refusing_port, hanging_listener])
@pytest.mark.parametrize(
    ("path", "body"),
    [("/async_process/start", {"steps": 2}), ("/api/v1/jobs/integrate", PI_JOB),
     ("/api/v1/add/4/5", None)],
)
def test_job_start_with_the_broker_down_is_a_fast_503_leaving_nothing(
    make_app, broken_broker, path, body
):
    with broken_broker() as port:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        client = app.test_client()
        existing = add_job(app, "PROGRESS", progress_current=1, progress_total=2)
        started = time.monotonic()
        response = client.post(path, json=body) if body else client.get(path)
        assert time.monotonic() - started < 1
        assert response.status_code == 503
        assert response.json == {"code": 503, "message": "The job queue is unavailable; try again shortly."}
        assert [job.id for job in job_rows(app)] == [existing]
        assert client.get(f"/api/v1/jobs/{existing}").json["progress"] == {"current": 1, "total": 2}
        assert client.get(f"/async_process/{existing}").status_code == 200
        assert len(client.get("/api/v1/jobs").json) == 1
