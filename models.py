"""The database: products and the API's users, and the queries the views need."""
import hashlib
import secrets
import sqlite3
from datetime import datetime, timezone
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, String, Text, TypeDecorator, delete, event, func, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

NAME_LENGTH = 120
USER_NAME_LENGTH = 80
MAX_ID = 2**31 - 1  # integer primary keys are 32-bit in PostgreSQL


@event.listens_for(Engine, "connect")
def write_ahead(dbapi_connection: Any, connection_record: Any) -> None:
    """Have SQLite keep a write-ahead log and sync it only at checkpoints.

    SQLite's default journal syncs to disk several times on every commit,
    most of the system time of a job start or a product change; with a
    write-ahead log, readers and the one writer no longer block each other.
    What it gives up: a commit survives the process crashing, but not a power
    cut or an OS crash before the next checkpoint (the database stays
    consistent; the last commits are gone). PostgreSQL, the production
    database, is unaffected. https://www.sqlite.org/wal.html
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


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


def products_page(page: int, per_page: int):
    """Return one page of products, ordered by id."""
    return db.paginate(db.select(Product).order_by(Product.id), page=page, per_page=per_page,
                       error_out=False)
