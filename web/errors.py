"""One JSON error shape for every failure: {"code", "message"} (+ "errors" for 422)."""
import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from background.jobs import QueueUnavailable

logger = logging.getLogger(__name__)


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
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(ValidationError, validation_error)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(QueueUnavailable, queue_unavailable)
    app.register_error_handler(Exception, unexpected_error)
