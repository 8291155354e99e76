"""Database models and the queries the views need."""
import hashlib
import secrets
from datetime import datetime, timezone
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import (JSON, DateTime, ForeignKey, String, Text, TypeDecorator, bindparam, delete,
                        func, select, update)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

NAME_LENGTH = 120
USER_NAME_LENGTH = 80
PATH_LENGTH = 2000
ADDRESS_LENGTH = 45  # the longest textual IPv6 address
POLLING_URL_LENGTH = 500
JOB_NAME_LENGTH = 40
ERROR_TYPE_LENGTH = 100
MAX_ID = 2**31 - 1  # integer primary keys are 32-bit in PostgreSQL


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A UTC timestamp that comes back timezone-aware from every database.

    PostgreSQL keeps the zone; SQLite drops it, and a naive time in the API
    would leave clients guessing.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


# SQLite hands a deleted row's id to the next insert unless the table says
# AUTOINCREMENT; a client that kept a Location would then see another record.
# PostgreSQL's sequences never go back. https://www.sqlite.org/autoinc.html
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Product(db.Model):
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name!r}>"


class User(db.Model):
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(USER_NAME_LENGTH), unique=True)
    # Only a SHA-256 of the token is kept: the token is 256 random bits, so a
    # slow password hash adds nothing, and a leaked table grants nothing.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name!r}>"


class Job(db.Model):
    """A background job started through the API; the worker keeps it current."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the Celery task id
    name: Mapped[str] = mapped_column(String(JOB_NAME_LENGTH))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10), default="PENDING", index=True)
    progress_current: Mapped[int | None]
    progress_total: Mapped[int | None]
    result: Mapped[Any | None] = mapped_column(JSON)
    error_type: Mapped[str | None] = mapped_column(String(ERROR_TYPE_LENGTH))
    error_message: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    owner: Mapped[User | None] = relationship(lazy="joined")
    # Set for results keyed by URL: at most one job holds a URL at a time,
    # which is what makes concurrent first requests start a single task.
    polling_url: Mapped[str | None] = mapped_column(String(POLLING_URL_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name} {self.state}>"


class AuditEvent(db.Model):
    """Who changed which product, how and when; written by the worker."""

    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    # Made in the request for each change: the event is stored once even if
    # its task runs twice, or the request stores it after a publish that
    # timed out but reached the broker.
    key: Mapped[str | None] = mapped_column(String(32), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    user: Mapped[User | None] = relationship(lazy="joined")
    action: Mapped[str] = mapped_column(String(10))
    product_id: Mapped[int]  # no foreign key: the trail outlives deleted products
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    remote_addr: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def clip(text: str | None, length: int) -> str | None:
    """Return text cut to length characters, so that any value fits its column."""
    return text if text is None or len(text) <= length else text[:length]


def change_product(product_id: int, changes: dict[str, Any]) -> Product | None:
    """Apply changes to a product in one statement; return it, or None if there is no such product.

    One UPDATE that finds the row or does not, rather than a read and a write:
    a request that loses a race with a DELETE finds nothing, where an object
    read first would fail to write.
    """
    if product_id > MAX_ID:
        return None
    if not changes:
        return db.session.get(Product, product_id)
    statement = update(Product).where(Product.id == product_id).values(**changes).returning(Product)
    return db.session.execute(statement).scalar_one_or_none()


def remove_product(product_id: int) -> bool:
    """Delete a product in one statement; tell whether this call deleted it.

    Of concurrent deletes of one product, exactly one deletes a row.
    """
    if product_id > MAX_ID:
        return False
    return db.session.execute(delete(Product).where(Product.id == product_id)).rowcount == 1


def hash_token(token: str) -> str:
    """Return the stored form of an API token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_user(name: str) -> tuple[User, str]:
    """Create a user with a new API token; return the user and the token."""
    user = User(name=name)
    db.session.add(user)
    return user, issue_token(user)


def issue_token(user: User) -> str:
    """Give user a new API token, which replaces the old one; return it."""
    token = secrets.token_urlsafe(32)
    user.token_hash = hash_token(token)
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """Return the user whose token this is, or None."""
    return db.session.execute(
        db.select(User).filter_by(token_hash=hash_token(token))
    ).scalar_one_or_none()


class RowPagination(Pagination):
    """db.paginate for two prepared Core statements: a page of plain rows and a count.

    rows must take :limit and :offset parameters; total counts them all. The rows are read-only
    mappings (column name to value), which schemas dump like objects.
    """

    # Through the session's connection, in its transaction, but past the ORM,
    # which has nothing to do for rows that are not objects.
    def _query_items(self) -> list:
        parameters = {"limit": self.per_page, "offset": self._query_offset}
        result = db.session.connection().execute(self._query_args["rows"], parameters)
        return list(result.mappings())

    def _query_count(self) -> int:
        return db.session.connection().execute(self._query_args["total"]).scalar_one()


# GET /api/v1/products is the endpoint every client calls (and the one that
# `pipenv run bench` loads). Reading rows rather than ORM objects, through
# statements built once rather than per request (SQLAlchemy then finds their
# compiled SQL without walking them again), took the list without its publish
# from 3.9 to 2.5 ms of web CPU per page of 20 there.
PRODUCT_PAGE = (
    select(Product.__table__).order_by(Product.id)
    .limit(bindparam("limit")).offset(bindparam("offset"))
)
PRODUCT_COUNT = select(func.count()).select_from(Product.__table__)


def products_page(page: int, per_page: int) -> RowPagination:
    """Return one page of products, ordered by id."""
    return RowPagination(page=page, per_page=per_page, error_out=False,
                         rows=PRODUCT_PAGE, total=PRODUCT_COUNT)
