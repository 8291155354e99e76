"""The job APIs: the async process, integration jobs, results keyed by URL."""
from typing import Any
from uuid import UUID

from flask import Blueprint, g, request, url_for
from werkzeug.exceptions import BadRequest, Conflict

from background.jobs import cancel_job, start_job
from background.models import Job, jobs_page
from background.polling import check_status_or_begin
from background.tasks import async_process, integrate
from models import db
from tasks import very_slow_add
from web.auth import token
from web.paging import pagination_headers
from web.schemas import (async_start_schema, async_status_schema, integrate_schema, job_schema,
                         jobs_query_schema, jobs_schema)

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")
async_bp = Blueprint("async_process", __name__, url_prefix="/async_process")

# Operands and their sum are then safe integers (at most 2**53 - 1), which a
# JavaScript client, whose numbers are float64, reads exactly.
MAX_OPERAND = 2**52 - 1


@async_bp.post("/start")
@token(required=False)
def start_async_process():
    """Start the demonstration process; poll the Location URL for its progress."""
    steps = async_start_schema.load(optional_json())["steps"]
    job = start_job(async_process, (steps,), name="async_process",
                    parameters={"steps": steps}, owner=g.user)
    location = url_for(".async_process_status", job_id=job.id)
    return {"result_id": job.id}, 202, {"Location": location}


@async_bp.get("/<uuid:job_id>")
def async_process_status(job_id: UUID):
    """Show whether an async process is ready and, once it is, its value."""
    return async_status_schema.dump(job_or_404(job_id))


@bp.get("/jobs")
def list_jobs():
    """List jobs, newest first, a page at a time, optionally in one state."""
    args = jobs_query_schema.load(request.args)
    page = jobs_page(**args)
    return jobs_schema.dump(page.items), 200, pagination_headers(page)


@bp.get("/jobs/<uuid:job_id>")
def get_job(job_id: UUID):
    """Show a job: its state, progress, and result or error."""
    return job_schema.dump(job_or_404(job_id))


@bp.post("/jobs/<uuid:job_id>/cancel")
def cancel(job_id: UUID):
    """Cancel a job that has not finished, terminating it if it runs."""
    job = job_or_404(job_id)
    if not cancel_job(job.id):
        raise Conflict(f"Job {job.id} has already finished ({job.state}).")
    return job_schema.dump(job), 202


@bp.post("/jobs/integrate")
@token(required=False)
def start_integration():
    """Start a Monte-Carlo estimate of the area under f inside a box."""
    parameters = integrate_schema.load(request.get_json())
    job = start_job(integrate, kwargs=parameters, name="integrate", parameters=parameters,
                    owner=g.user)
    return job_schema.dump(job), 202, {"Location": url_for(".get_job", job_id=job.id)}


@bp.get("/add/<int(signed=True):a>/<int(signed=True):b>")
@token(required=False)
def add(a: int, b: int):
    """Add a and b in the background, once per URL: started, running, then complete."""
    if max(abs(a), abs(b)) > MAX_OPERAND:
        raise BadRequest(f"Operands must be integers between -{MAX_OPERAND} and {MAX_OPERAND}.")
    # One URL per sum, however the numbers were written: /add/05/3 is /add/5/3.
    url = url_for(".add", a=a, b=b)
    status, job_id = check_status_or_begin(very_slow_add, (a, b), polling_url=url)
    job = db.session.get(Job, job_id)
    body: dict[str, Any] = {"status": status, "job": job_schema.dump(job)}
    if status == "complete":
        body["result"] = job.result
        return body, 200
    return body, 202, {"Location": url}


def job_or_404(job_id: UUID) -> Job:
    """Return the job, or abort with 404 if nobody started it."""
    return db.get_or_404(Job, str(job_id), description=f"There is no job with id {job_id}.")


def optional_json() -> dict[str, Any]:
    """Return the JSON body, or {} when the request has no body."""
    if not request.get_data(cache=True):
        return {}
    return request.get_json()
