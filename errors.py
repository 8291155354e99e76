"""One JSON error shape for every failure: {"code", "message"} (+ "errors" for 422)."""
import logging

from flask import Flask, Request, jsonify, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import (BadRequest, HTTPException, InternalServerError,
                                 RequestEntityTooLarge, ServiceUnavailable)

from jobs import QueueUnavailable

logger = logging.getLogger(__name__)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keeping the schemas' field order; deep nesting is a client error."""

    sort_keys = False

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:
            # The stdlib parser recurses per nesting level; Werkzeug turns a
            # ValueError into a 400, but lets a RecursionError become a 500.
            raise ValueError("JSON is nested too deeply.") from error


class JSONRequest(Request):
    """Flask's request, saying plainly what was wrong with a body that is not JSON."""

    def on_json_loading_failed(self, e: ValueError | None):
        if e is None:
            return super().on_json_loading_failed(e)
        raise BadRequest(f"The request body is not valid JSON: {e}")


def refuse_oversized_stream() -> None:
    """Answer 413 to a chunked body over MAX_CONTENT_LENGTH, as to any other.

    A body sent without Content-Length cannot be refused up front, and
    Werkzeug stops reading it at the limit, handing the view what it read
    so far: a small JSON object followed by megabytes of spaces would parse.
    So read it here, then look one byte past the limit in the server's own
    stream (PEP 3333's wsgi.input), which ends where the body does.
    """
    if request.content_length is not None or "chunked" not in request.headers.get(
            "Transfer-Encoding", "").lower():
        return
    request.get_data(cache=True)
    if request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge(
            f"The request body is larger than {request.max_content_length} bytes.")


def error_response(code: int, message: str, **extra):
    body = {"code": code, "message": message, **extra}
    return jsonify(body), code


def http_error(error: HTTPException):
    """Answer any HTTP error as JSON, keeping its headers (Allow, WWW-Authenticate)."""
    response = error.get_response()
    response.data = jsonify(code=error.code, message=error.description).get_data()
    response.content_type = "application/json"
    return response


def validation_error(error: ValidationError):
    """Answer a body that failed validation with 422 and the field errors."""
    messages = error.normalized_messages()
    return error_response(422, "The request body is not valid.", errors=messages)


def database_unavailable(error: DBAPIError):
    """Answer 503 when the database cannot be reached."""
    logger.error("Database unavailable: %s", error.orig.__class__.__name__)
    return http_error(ServiceUnavailable("The database is unavailable; try again shortly."))


def queue_unavailable(error: QueueUnavailable):
    """Answer 503 when a job could not be queued."""
    return http_error(ServiceUnavailable("The job queue is unavailable; try again shortly."))


def unexpected_error(error: Exception):
    """Answer 500 for a bug, logging the traceback but never sending it."""
    if isinstance(error, HTTPException):
        return http_error(error)
    logger.exception("Unhandled error")
    return http_error(InternalServerError("An unexpected error occurred."))


def init_app(app: Flask) -> None:
    """Install the JSON error handlers on app."""
    app.json = JSONProvider(app)
    app.request_class = JSONRequest
    app.before_request(refuse_oversized_stream)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(ValidationError, validation_error)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(QueueUnavailable, queue_unavailable)
    app.register_error_handler(Exception, unexpected_error)
