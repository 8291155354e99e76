"""Validation and (de)serialisation of products, and of the page a list shows."""
from typing import Any

from flask_marshmallow import Marshmallow
from marshmallow import ValidationError, fields, validate, validates, validates_schema
from werkzeug.exceptions import BadRequest

from models import NAME_LENGTH, Product

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


product_schema = ProductSchema()
product_update_schema = ProductSchema(partial=True)
products_schema = ProductSchema(many=True)
pagination_schema = PaginationSchema()
