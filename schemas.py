"""Validation and (de)serialisation of what the API reads and writes."""
from typing import Any

from flask_marshmallow import Marshmallow
from marshmallow import ValidationError, fields, validate, validates
from werkzeug.exceptions import BadRequest

from models import NAME_LENGTH, Product

ma = Marshmallow()

DESCRIPTION_LENGTH = 10_000
MAX_PAGE = 1_000_000


def storable_text(value: str) -> None:
    """Refuse text that a database cannot store: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValidationError("Must be valid Unicode text.") from error


class ProductSchema(ma.SQLAlchemySchema):
    class Meta:
        model = Product
        ordered = True

    id = ma.auto_field(dump_only=True)
    name = fields.String(
        required=True, validate=[validate.Length(min=1, max=NAME_LENGTH), storable_text]
    )
    description = fields.String(
        allow_none=True, validate=[validate.Length(max=DESCRIPTION_LENGTH), storable_text]
    )

    @validates("name")
    def name_not_blank(self, value: str, **kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")


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
