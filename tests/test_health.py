"""GET /health: the database, the broker, the workers and the queues, within 2 s whatever is down."""
import time

import pytest

from config import QUEUES
from tests.services import hanging_listener, refusing_port, silent_host

BROKEN = {"refused": refusing_port, "hung": hanging_listener, "silent": silent_host}
EMPTY_QUEUES = {name: {"length": 0, "oldest_seconds": None} for name in QUEUES}
UNKNOWN_QUEUES = {name: {"length": None, "oldest_seconds": None} for name in QUEUES}


def timed_health(client):
    started = time.monotonic()
    response = client.get("/health")
    return response, time.monotonic() - started


def test_health_is_ok_with_a_worker_answering(client, worker):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok",
                             "checks": {"database": "ok", "broker": "ok", "workers": 1},
                             "queues": EMPTY_QUEUES}
    assert response.headers["Cache-Control"] == "no-store"


def test_health_is_degraded_but_200_without_workers(make_app, redis_server):
    response = make_app(REDIS_URL=redis_server.url).test_client().get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "degraded",
                             "checks": {"database": "ok", "broker": "ok", "workers": 0},
                             "queues": EMPTY_QUEUES}


@pytest.mark.parametrize("failure", BROKEN)
def test_health_names_a_broker_that_is_down_within_2_seconds(make_app, failure):
    with BROKEN[failure]() as port:
        client = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0").test_client()
        response, seconds = timed_health(client)
    assert seconds < 2
    assert response.status_code == 503
    assert response.json == {
        "code": 503, "message": "Unavailable: broker.", "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable", "workers": None},
        "queues": UNKNOWN_QUEUES,
    }


@pytest.mark.parametrize("failure", BROKEN)
def test_health_names_a_database_that_is_down_within_2_seconds(make_app, redis_server, failure):
    with BROKEN[failure]() as port:
        client = make_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/products",
                          REDIS_URL=redis_server.url).test_client()
        response, seconds = timed_health(client)
    assert seconds < 2
    assert response.status_code == 503
    assert response.json["message"] == "Unavailable: database."
    assert response.json["checks"] == {"database": "unavailable", "broker": "ok", "workers": 0}
    assert response.json["queues"] == EMPTY_QUEUES


def test_health_with_everything_down_still_answers_within_2_seconds(make_app):
    with hanging_listener() as broker, silent_host() as database:
        client = make_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{database}/products",
                          REDIS_URL=f"redis://127.0.0.1:{broker}/0").test_client()
        response, seconds = timed_health(client)
    assert seconds < 2
    assert response.status_code == 503
    assert response.json["message"] == "Unavailable: database, broker."
    assert response.json["queues"] == UNKNOWN_QUEUES
