"""Validation and (de)serialisation of what the API reads and writes."""
import math
from typing import Any

from flask_marshmallow import Marshmallow
from marshmallow import ValidationError, fields, validate, validates, validates_schema
from werkzeug.exceptions import BadRequest

from integration import ALLOWED, MAX_DEPTH, MAX_LENGTH, ExpressionError, compile_expression
from jobs import FINISHED, STATES
from models import NAME_LENGTH, AuditEvent, Job, Product

ma = Marshmallow()

DESCRIPTION_LENGTH = 10_000
MAX_PAGE = 1_000_000


# What str.isspace() calls whitespace (and str.strip() removes), written out for
# /openapi.json: its patterns are ECMA-262 regexes, whose \s leaves out \x1c-\x1f
# and \x85 but takes in \ufeff, and Python's re and ECMA-262 read these escapes alike.
WHITESPACE = (r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
              r"\u202f\u205f\u3000")
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK_NOR_NUL = rf"^[^\u0000]*[^\u0000{WHITESPACE}][^\u0000]*$"


class StorableText(validate.Regexp):
    """Refuse NUL characters, lone surrogates and, unless blank is allowed, blank text.

    The pattern is what /openapi.json states, and the last word here, so that the
    two cannot disagree; the checks before it only choose the message.
    """

    def __init__(self, blank: bool = True) -> None:
        super().__init__(NO_NUL if blank else NOT_BLANK_NOR_NUL)

    def __call__(self, value: str) -> str:
        if "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValidationError("Must be valid Unicode text.") from error
        # Empty text is left to the field's validate.Length: one message is enough.
        if value and not self.regex.search(value):
            raise ValidationError("Must not be blank.")
        return value


class ProductSchema(ma.SQLAlchemySchema):
    class Meta:
        model = Product
        ordered = True

    id = ma.auto_field(dump_only=True)
    name = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=NAME_LENGTH), StorableText(blank=False)],
        metadata={"description": "Not blank; no NUL characters or lone surrogates."},
    )
    description = fields.String(
        allow_none=True, validate=[validate.Length(max=DESCRIPTION_LENGTH), StorableText()],
        metadata={"description": "No NUL characters or lone surrogates."},
    )


class AuditEventSchema(ma.SQLAlchemySchema):
    class Meta:
        model = AuditEvent
        ordered = True

    id = ma.auto_field()
    user = fields.Function(lambda event: event.user.name if event.user else None)
    action = ma.auto_field()
    product_id = ma.auto_field()
    method = ma.auto_field()
    path = ma.auto_field()
    remote_addr = ma.auto_field()
    created_at = ma.auto_field()


class QuerySchema(ma.Schema):
    """Base for query-string schemas: a bad query is a 400, not a 422."""

    class Meta:
        unknown = "exclude"

    def handle_error(self, error: ValidationError, data: Any, **kwargs: Any) -> None:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.normalized_messages().items()
        )
        raise BadRequest(f"Invalid query parameters. {problems}")


class PaginationSchema(QuerySchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class JobsQuerySchema(PaginationSchema):
    state = fields.String(validate=validate.OneOf(STATES))


def job_progress(job: Job) -> dict[str, int] | None:
    if job.progress_total is None:
        return None
    return {"current": job.progress_current, "total": job.progress_total}


def job_error(job: Job) -> dict[str, str] | None:
    if job.error_type is None:
        return None
    return {"type": job.error_type, "message": job.error_message}


class JobSchema(ma.SQLAlchemySchema):
    class Meta:
        model = Job
        ordered = True

    id = ma.auto_field()
    name = ma.auto_field()
    state = ma.auto_field()
    ready = fields.Function(lambda job: job.state in FINISHED)
    successful = fields.Function(lambda job: job.state == "SUCCESS")
    progress = fields.Function(job_progress)
    result = ma.auto_field()
    error = fields.Function(job_error)
    owner = fields.Function(lambda job: job.owner.name if job.owner else None)
    created_at = ma.auto_field()
    started_at = ma.auto_field()
    finished_at = ma.auto_field()


class AsyncStatusSchema(ma.Schema):
    """The async process status, in the shape first published: ready, successful, value."""

    class Meta:
        ordered = True

    ready = fields.Function(lambda job: job.state in FINISHED)
    successful = fields.Function(lambda job: job.state == "SUCCESS")
    value = fields.Function(lambda job: job.result if job.state == "SUCCESS" else None)
    state = fields.String()
    progress = fields.Function(job_progress)
    error = fields.Function(job_error)


class AsyncStartSchema(ma.Schema):
    steps = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100), strict=True)


class Real(fields.Float):
    """A finite float that must arrive as a JSON number, not as a string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class IntegrateSchema(ma.Schema):
    f = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_LENGTH), StorableText(blank=False)],
        metadata={"description": f"An expression in xs. {ALLOWED} It is nested at most "
                                 f"{MAX_DEPTH} levels deep, and its constant parts are finite."},
    )
    a = Real(required=True)
    b = Real(required=True, metadata={
        "description": "Greater than a, with (b - a) * (d - c) finite in float64."})
    c = Real(required=True)
    d = Real(required=True, metadata={"description": "Greater than c."})
    size = fields.Integer(load_default=100, strict=True, validate=validate.Range(1, 10_000_000))
    seed = fields.Integer(strict=True, validate=validate.Range(0, 2**63 - 1))

    @validates("f")
    def f_is_an_expression(self, value: str, **kwargs: Any) -> None:
        """Refuse f unless it compiles, saying what was refused."""
        try:
            compile_expression(value)
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


product_schema = ProductSchema()
product_update_schema = ProductSchema(partial=True)
products_schema = ProductSchema(many=True)
pagination_schema = PaginationSchema()
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


class HealthSchema(ma.Schema):
    """What /health answers while the database and broker answer."""

    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    checks = fields.Nested(HealthChecksSchema, required=True)


class HealthFailureSchema(ErrorSchema):
    """What /health answers, with the error shape, when the database or broker fails."""

    status = fields.String(required=True, validate=validate.OneOf(["unavailable"]))
    checks = fields.Nested(HealthChecksSchema, required=True)
