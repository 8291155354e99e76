"""Validation and (de)serialisation of jobs, audit events, and the other shapes the API answers with."""
import math
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate, validates, validates_schema

from background.expression import ALLOWED, MAX_DEPTH, MAX_LENGTH, ExpressionError, parse
from background.models import STATES, AuditEvent, Job
from schemas import PaginationSchema, StorableText, ma


class AuditEventSchema(ma.SQLAlchemySchema):
    class Meta:
        model = AuditEvent
        ordered = True

    id = ma.auto_field()
    user = fields.String(attribute="user_name", allow_none=True)
    action = ma.auto_field()
    product_id = ma.auto_field()
    method = ma.auto_field()
    path = ma.auto_field()
    remote_addr = ma.auto_field()
    created_at = ma.auto_field()


class JobsQuerySchema(PaginationSchema):
    state = fields.String(validate=validate.OneOf(STATES))


class ProgressSchema(ma.Schema):
    current = fields.Integer(required=True)
    total = fields.Integer(required=True)


class JobErrorSchema(ma.Schema):
    type = fields.String(required=True)
    message = fields.String(required=True)


class JobSchema(ma.SQLAlchemySchema):
    class Meta:
        model = Job
        ordered = True

    id = ma.auto_field()
    name = ma.auto_field()
    state = ma.auto_field()
    ready = fields.Boolean()
    successful = fields.Boolean()
    progress = fields.Nested(ProgressSchema, allow_none=True)
    result = ma.auto_field()
    error = fields.Nested(JobErrorSchema, allow_none=True)
    owner = fields.String(attribute="owner_name", allow_none=True)
    created_at = ma.auto_field()
    started_at = ma.auto_field()
    finished_at = ma.auto_field()


class AsyncStatusSchema(ma.Schema):
    """The async process status, in the shape first published: ready, successful, value."""

    class Meta:
        ordered = True

    ready = fields.Boolean()
    successful = fields.Boolean()
    value = fields.Raw(allow_none=True, metadata={"description": "The result once successful."})
    state = fields.String()
    progress = fields.Nested(ProgressSchema, allow_none=True)
    error = fields.Nested(JobErrorSchema, allow_none=True)


class AsyncStartSchema(ma.Schema):
    steps = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100), strict=True)


class IntegrateSchema(ma.Schema):
    f = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_LENGTH), StorableText(blank=False)],
        metadata={"description": f"An expression in xs. {ALLOWED} It is nested at most "
                                 f"{MAX_DEPTH} levels deep, and its constant parts are finite."},
    )
    a = fields.Float(required=True, allow_nan=False)
    b = fields.Float(required=True, allow_nan=False, metadata={
        "description": "Greater than a, with (b - a) * (d - c) finite in float64."})
    c = fields.Float(required=True, allow_nan=False)
    d = fields.Float(required=True, allow_nan=False, metadata={"description": "Greater than c."})
    size = fields.Integer(load_default=100, strict=True, validate=validate.Range(1, 10_000_000))
    seed = fields.Integer(strict=True, validate=validate.Range(0, 2**63 - 1))

    @pre_load
    def box_is_json_numbers(self, data: Any, **kwargs: Any) -> Any:
        """Refuse a, b, c or d sent as strings: fields.Float alone would read "1.5" as 1.5."""
        if isinstance(data, dict):
            errors = {name: ["Not a valid number."] for name in ("a", "b", "c", "d")
                      if name in data and not isinstance(data[name], (int, float))}
            if errors:
                raise ValidationError(errors)
        return data

    @validates("f")
    def f_is_an_expression(self, value: str, **kwargs: Any) -> None:
        """Refuse f unless it compiles, saying what was refused."""
        try:
            parse(value)
        except ExpressionError as error:
            raise ValidationError(str(error)) from None

    @validates_schema
    def box_is_finite_and_not_empty(self, data: dict, **kwargs: Any) -> None:
        if {"a", "b", "c", "d"} - data.keys():
            return
        if not data["a"] < data["b"]:
            raise ValidationError("Must be greater than a.", "b")
        if not data["c"] < data["d"]:
            raise ValidationError("Must be greater than c.", "d")
        if not math.isfinite((data["b"] - data["a"]) * (data["d"] - data["c"])):
            raise ValidationError("The box is too large to measure in float64.", "b")


audit_events_schema = AuditEventSchema(many=True)
job_schema = JobSchema()
jobs_schema = JobSchema(many=True)
jobs_query_schema = JobsQuerySchema()
async_status_schema = AsyncStatusSchema()
async_start_schema = AsyncStartSchema()
integrate_schema = IntegrateSchema()


# Shapes the API answers with that no view loads or dumps through a schema;
# openapi.py documents them.

class ErrorSchema(ma.Schema):
    """The one error shape of every endpoint and status (errors.py)."""

    code = fields.Integer(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "For 422: the messages for each field."})


class AsyncStartedSchema(ma.Schema):
    """What starting an async process answers (jobs_api.start_async_process)."""

    result_id = fields.UUID(required=True)


class AddStatusSchema(ma.Schema):
    """What /api/v1/add/<a>/<b> answers (jobs_api.add)."""

    status = fields.String(required=True, validate=validate.OneOf(["started", "running", "complete"]))
    job = fields.Nested(JobSchema, required=True)
    result = fields.Integer(metadata={"description": "a + b, once complete."})


class HealthChecksSchema(ma.Schema):
    """What /health found (health.health)."""

    database = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    broker = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    workers = fields.Integer(required=True, allow_none=True)


class QueueFactsSchema(ma.Schema):
    """What waits in one queue (background.queues.queue_facts); null when the broker cannot tell."""

    length = fields.Integer(required=True, allow_none=True,
                            metadata={"description": "Messages waiting for a worker."})
    oldest_seconds = fields.Float(required=True, allow_none=True, metadata={
        "description": "Seconds the oldest waiting message has waited; null if none."})


def queues_field() -> fields.Dict:
    """Return the field of /health's queue facts, by queue name."""
    return fields.Dict(keys=fields.String(), values=fields.Nested(QueueFactsSchema), required=True,
                       metadata={"description": "By queue: jobs, celery and fire-and-forget."})


class HealthSchema(ma.Schema):
    """What /health answers while the database and broker answer."""

    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    checks = fields.Nested(HealthChecksSchema, required=True)
    queues = queues_field()


class HealthFailureSchema(ErrorSchema):
    """What /health answers, with the error shape, when the database or broker fails."""

    status = fields.String(required=True, validate=validate.OneOf(["unavailable"]))
    checks = fields.Nested(HealthChecksSchema, required=True)
    queues = queues_field()
