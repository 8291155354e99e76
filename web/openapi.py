"""GET /openapi.json: an OpenAPI 3 document of every JSON endpoint, built from the schemas.

The bodies come from the marshmallow schemas (apispec's MarshmallowPlugin),
the paths and their path parameters from the app's URL map, and the rest
(statuses, headers, security) from OPERATIONS below, one entry per view.
"""
import copy
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app
from werkzeug.routing import UUIDConverter

from models import MAX_ID
from schemas import PaginationSchema, ProductSchema, product_update_schema
from web.jobs import MAX_OPERAND
from web.schemas import (AddStatusSchema, AsyncStartedSchema, AsyncStartSchema, AsyncStatusSchema,
                         AuditEventSchema, ErrorSchema, HealthFailureSchema, HealthSchema,
                         IntegrateSchema, JobSchema, JobsQuerySchema)

bp = Blueprint("openapi", __name__)


SCHEMAS = {
    "Product": ProductSchema, "ProductUpdate": product_update_schema,
    "AuditEvent": AuditEventSchema, "Job": JobSchema, "AsyncStart": AsyncStartSchema,
    "AsyncStarted": AsyncStartedSchema, "AsyncStatus": AsyncStatusSchema,
    "Integrate": IntegrateSchema, "AddStatus": AddStatusSchema, "Health": HealthSchema,
    "HealthFailure": HealthFailureSchema, "Error": ErrorSchema,
}


def header(description: str, type_: str = "string") -> dict[str, Any]:
    """Describe a response header that is always sent."""
    return {"description": description, "required": True, "schema": {"type": type_}}


def error(description: str, headers: dict | None = None) -> dict[str, Any]:
    """Describe an error response: the one error shape."""
    return ok(description, "Error", headers)


def ok(description: str, schema: Any = None, headers: dict | None = None) -> dict[str, Any]:
    """Describe a response, with its JSON body's schema and headers if it has them."""
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = headers
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response


ERRORS = {
    "400": error("The JSON or the query string is malformed."),
    "401": error("No, or no valid, bearer token.",
                 {"WWW-Authenticate": header("Bearer: how to authenticate.")}),
    "404": error("No such resource (or an id of the wrong form)."),
    "409": error("The job has already finished."),
    "413": error("The body is larger than 1 MiB."),
    "415": error("The body is not JSON (Content-Type: application/json)."),
    "422": error("The body is valid JSON but not a valid request; errors names the fields."),
    "503": error("The database or the job queue is unavailable; try again shortly."),
}

LOCATION = {"Location": header("The URL of what was created or started.")}
PAGE_HEADERS = {
    "X-Total-Count": header("How many items all the pages hold.", "integer"),
    "Link": header("RFC 8288 links to the first, prev, next and last pages."),
}


def json_body(schema: Any, required: bool = True) -> dict[str, Any]:
    """Describe a JSON request body."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def errors(*codes: str) -> dict[str, Any]:
    """Describe the error responses with these statuses."""
    return {code: ERRORS[code] for code in codes}


TOKEN_REQUIRED = [{"bearer": []}]
# No token is fine; a token that is sent must be valid.
TOKEN_OPTIONAL = [{}, {"bearer": []}]
PAGINATION = {"in": "query", "schema": PaginationSchema}
WRITE_ERRORS = ("400", "401", "413", "415", "422", "503")

# One entry per view (endpoint name); the summary is the view's docstring.
OPERATIONS: dict[str, dict[str, Any]] = {
    "products.list_products": {
        "parameters": [PAGINATION],
        "responses": {"200": ok("Products by id.", ProductSchema(many=True), PAGE_HEADERS),
                      **errors("400", "503")},
    },
    "products.get_product": {
        "responses": {"200": ok("The product.", "Product"), **errors("404", "503")},
    },
    "products.create_product": {
        "security": TOKEN_REQUIRED,
        "requestBody": json_body("Product"),
        "responses": {"201": ok("The product.", "Product", LOCATION), **errors(*WRITE_ERRORS)},
    },
    "products.update_product": {
        "security": TOKEN_REQUIRED,
        "requestBody": json_body("ProductUpdate"),
        "responses": {"200": ok("The product.", "Product"), **errors(*WRITE_ERRORS, "404")},
    },
    "products.delete_product": {
        "security": TOKEN_REQUIRED,
        "responses": {"204": ok("Deleted."), **errors("401", "404", "503")},
    },
    "products.list_audit_events": {
        "security": TOKEN_REQUIRED,
        "parameters": [PAGINATION],
        "responses": {"200": ok("Product changes, newest first.", AuditEventSchema(many=True),
                                PAGE_HEADERS),
                      **errors("400", "401", "503")},
    },
    "async_process.start_async_process": {
        "security": TOKEN_OPTIONAL,
        "requestBody": json_body("AsyncStart", required=False),
        "responses": {"202": ok("Started; poll Location.", "AsyncStarted", LOCATION),
                      **errors(*WRITE_ERRORS)},
    },
    "async_process.async_process_status": {
        "responses": {"200": ok("The process's state.", "AsyncStatus"), **errors("404", "503")},
    },
    "jobs.list_jobs": {
        "parameters": [{"in": "query", "schema": JobsQuerySchema}],
        "responses": {"200": ok("Jobs, newest first.", JobSchema(many=True), PAGE_HEADERS),
                      **errors("400", "503")},
    },
    "jobs.get_job": {
        "responses": {"200": ok("The job.", "Job"), **errors("404", "503")},
    },
    "jobs.cancel": {
        "responses": {"202": ok("Cancelled.", "Job"), **errors("404", "409", "503")},
    },
    "jobs.start_integration": {
        "security": TOKEN_OPTIONAL,
        "requestBody": json_body("Integrate"),
        "responses": {"202": ok("Queued; poll Location.", "Job", LOCATION),
                      **errors(*WRITE_ERRORS)},
    },
    "jobs.add": {
        "security": TOKEN_OPTIONAL,
        "responses": {
            "200": ok("Complete: the stored result.", "AddStatus"),
            "202": ok("Started, or still running; poll Location.", "AddStatus", LOCATION),
            **errors("400", "401", "404", "503"),
        },
    },
    "health.health": {
        "responses": {
            "200": ok("The database and broker answer; degraded if no worker does.", "Health"),
            "503": ok("The database or the broker does not answer.", "HealthFailure"),
        },
    },
    "openapi.openapi_document": {
        "responses": {"200": ok("This document.", {"type": "object"})},
    },
}

# Werkzeug's converters, as they appear in the app's rules.
RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>\w+)>")
CONVERTERS = {
    "int": {"type": "integer", "minimum": 0},
    "int(signed=True)": {"type": "integer"},
    "uuid": {"type": "string", "format": "uuid", "pattern": f"^{UUIDConverter.regex}$"},
}
# What the views refuse, or can never find, among the values a converter matches.
OPERAND = {"minimum": -MAX_OPERAND, "maximum": MAX_OPERAND}
BOUNDS = {"product_id": {"minimum": 1, "maximum": MAX_ID}, "a": OPERAND, "b": OPERAND}


def path_parameters(rule: str) -> list[dict[str, Any]]:
    """Return the OpenAPI path parameters of a Werkzeug rule."""
    return [{"in": "path", "name": match["name"], "required": True,
             "schema": {**CONVERTERS[match["converter"]], **BOUNDS.get(match["name"], {})}}
            for match in RULE_ARGUMENT.finditer(rule)]


def openapi_path(rule: str) -> str:
    """Return a Werkzeug rule as an OpenAPI path: /jobs/<uuid:job_id> -> /jobs/{job_id}."""
    return RULE_ARGUMENT.sub(r"{\g<name>}", rule)


def build_document(app: Flask) -> dict[str, Any]:
    """Return the OpenAPI document of the JSON endpoints that app serves."""
    plugin = MarshmallowPlugin()
    spec = APISpec(title="Flask + Celery products API", version="1", plugins=[plugin],
                   openapi_version="3.0.3")
    spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer",
        "description": "A token that `flask users token NAME` prints.",
    })
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema=schema)

    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if rule.endpoint not in OPERATIONS:
            continue
        summary = (app.view_functions[rule.endpoint].__doc__ or "").strip().split("\n")[0]
        # A copy: apispec resolves the schemas in place.
        operation = {"summary": summary, "operationId": rule.endpoint,
                     **copy.deepcopy(OPERATIONS[rule.endpoint])}
        operation["parameters"] = [*path_parameters(rule.rule), *operation.get("parameters", ())]
        path = openapi_path(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_document():
    """Describe every JSON endpoint as an OpenAPI 3 document."""
    return build_document(current_app)
