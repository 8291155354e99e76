"""Results keyed by URL: /api/v1/add and check_status_or_begin."""
import threading

import pytest

from background.models import Job
from background.polling import (check_status_or_begin, get_process_result, get_taskid_from_url,
                                get_url_from_taskid, process_is_complete, process_is_running,
                                process_is_running_or_complete)
from models import db
from tasks import very_slow_add
from tests.conftest import DATABASES
from tests.helpers import add_job, job_rows, run_flask_shell
from tests.services import wait_for


def test_add_starts_once_then_runs_then_answers_from_the_stored_result(client, app, worker):
    first = client.get("/api/v1/add/2/3")
    assert first.status_code == 202
    assert first.json["status"] == "started"
    job_id = first.json["job"]["id"]

    second = client.get("/api/v1/add/2/3")
    assert second.status_code == 202
    assert (second.json["status"], second.json["job"]["id"]) == ("running", job_id)

    done = wait_for(lambda: (r := client.get("/api/v1/add/2/3")).status_code == 200 and r, timeout=20)
    assert done.json["status"] == "complete" and done.json["result"] == 5
    assert done.json["job"]["id"] == job_id and done.json["job"]["state"] == "SUCCESS"

    again = client.get("/api/v1/add/2/3")
    assert (again.status_code, again.json["result"], again.json["job"]["id"]) == (200, 5, job_id)
    assert [job.id for job in job_rows(app)] == [job_id]
    assert worker.output().count("received") == 1


def test_add_after_a_failure_starts_a_new_attempt(client, app, make_app, redis_server):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    failed = add_job(app, "FAILURE", polling_url="/api/v1/add/1/1", error_type="TypeError",
                     error_message="boom")
    response = client.get("/api/v1/add/1/1")
    assert response.status_code == 202 and response.json["status"] == "started"
    assert response.json["job"]["id"] != failed
    with app.app_context():
        assert db.session.get(Job, failed).polling_url is None
        assert get_taskid_from_url("/api/v1/add/1/1") == response.json["job"]["id"]
    assert redis_server.client().llen("jobs") == 1


def test_twenty_concurrent_first_requests_start_one_task(make_app, redis_server, app):
    app = make_app(REDIS_URL=redis_server.url)
    barrier = threading.Barrier(20)
    answers = []

    def request():
        client = app.test_client()
        barrier.wait(timeout=10)
        response = client.get("/api/v1/add/20/22")
        answers.append((response.status_code, response.json["status"], response.json["job"]["id"]))

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(answers) == 20
    assert sorted(status for _, status, _ in answers) == ["running"] * 19 + ["started"]
    assert {code for code, _, _ in answers} == {202}
    assert len({job_id for _, _, job_id in answers}) == 1
    assert len(job_rows(app)) == 1
    assert redis_server.client().llen("jobs") == 1


@pytest.mark.parametrize("path", [
    "/api/v1/add/4503599627370496/1", "/api/v1/add/1/-4503599627370496", "/api/v1/add/9007199254740992/1",
])
def test_add_with_operands_whose_sum_json_may_not_hold_exactly_returns_400(client, app, path):
    response = client.get(path)
    assert response.status_code == 400
    assert "between -4503599627370495 and 4503599627370495" in response.json["message"]
    assert job_rows(app) == []


@pytest.mark.parametrize("a", [4503599627370495, -4503599627370495])
def test_add_takes_operands_up_to_2_to_the_52_minus_1(client, a):
    response = client.get(f"/api/v1/add/{a}/{a}")
    assert response.status_code == 202
    assert response.json["status"] == "started"


@pytest.mark.parametrize("path", ["/api/v1/add/a/1", "/api/v1/add/1.5/1", "/api/v1/add/1"])
def test_add_with_operands_that_are_not_integers_returns_404(client, path):
    assert client.get(path).status_code == 404


def test_python_api_follows_a_job_from_start_to_stored_result(app, worker):
    url = "/reports/7-plus-8"
    with app.app_context():
        status, job_id = check_status_or_begin(very_slow_add, (7, 8), polling_url=url)
        assert status == "started"
        assert check_status_or_begin(very_slow_add, (7, 8), polling_url=url) == ("running", job_id)
        assert get_taskid_from_url(url) == job_id and get_url_from_taskid(job_id) == url
        assert process_is_running(url) and process_is_running_or_complete(task_id=job_id)
        assert not process_is_complete(url) and get_process_result(url) is None

        wait_for(lambda: process_is_complete(url), timeout=20)

        assert get_process_result(polling_url=url) == 15 == get_process_result(task_id=job_id)
        assert not process_is_running(task_id=job_id) and process_is_running_or_complete(url)
        assert check_status_or_begin(very_slow_add, (7, 8), polling_url=url) == ("complete", job_id)
        status, rerun = check_status_or_begin(very_slow_add, (7, 8), polling_url=url,
                                              cache_results=False)
        assert status == "started" and rerun != job_id and get_taskid_from_url(url) == rerun
        status, again = check_status_or_begin(very_slow_add, (7, 8), polling_url=url,
                                              check_running=False)
        assert status == "started" and again not in (job_id, rerun)


def test_python_api_can_name_the_task_id(app, make_app, redis_server):
    app = make_app(REDIS_URL=redis_server.url)
    with app.app_context():
        assert check_status_or_begin(very_slow_add, (1, 1), task_id="my-sum") == ("started", "my-sum")
        assert check_status_or_begin(very_slow_add, (1, 1), task_id="my-sum") == ("running", "my-sum")
        assert get_url_from_taskid("my-sum") is None
        assert get_taskid_from_url("/nobody/asked") is None
        assert not process_is_running_or_complete(task_id="unknown")


def test_python_api_works_from_flask_shell(environment, redis_server):
    code = (
        "from background.polling import check_status_or_begin\n"
        "print('STATUS', check_status_or_begin(very_slow_add, (7, 8), polling_url='/shell')[0])\n"
        "print('STATUS', check_status_or_begin(very_slow_add, (7, 8), polling_url='/shell')[0])\n"
    )
    output = run_flask_shell({**environment, "REDIS_URL": redis_server.url}, code)
    assert "STATUS started" in output and "STATUS running" in output
    assert redis_server.client().llen("jobs") == 1


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_add_spelled_with_leading_zeros_is_the_same_sum_and_the_same_job(make_app, redis_server):
    client = make_app(REDIS_URL=redis_server.url).test_client()
    first = client.get("/api/v1/add/5/3")
    assert (first.status_code, first.json["status"]) == (202, "started")
    for path in ["/api/v1/add/05/3", f"/api/v1/add/{'0' * 600}5/{'0' * 2000}3"]:
        again = client.get(path)
        assert (again.status_code, again.json["status"]) == (202, "running")
        assert again.json["job"]["id"] == first.json["job"]["id"]
        assert again.headers["Location"] == "/api/v1/add/5/3"
    assert redis_server.client().llen("jobs") == 1


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_python_api_keys_urls_of_any_length(make_app, redis_server):
    app = make_app(REDIS_URL=redis_server.url)
    long_url, other_long_url = "/sums/" + "7" * 3000, "/sums/" + "7" * 2999 + "8"
    with app.app_context():
        status, job_id = check_status_or_begin(very_slow_add, (7, 8), polling_url=long_url)
        assert status == "started"
        assert check_status_or_begin(very_slow_add, (7, 8), polling_url=long_url) == ("running", job_id)
        assert get_taskid_from_url(long_url) == job_id and process_is_running(long_url)
        status, other_id = check_status_or_begin(very_slow_add, (7, 8), polling_url=other_long_url)
        assert status == "started" and other_id != job_id
