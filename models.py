"""Database models and the queries the views need."""
import hashlib
import secrets
from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

NAME_LENGTH = 120
MAX_ID = 2**31 - 1  # integer primary keys are 32-bit in PostgreSQL


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name!r}>"


class User(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # Only a SHA-256 of the token is kept: the token is 256 random bits, so a
    # slow password hash adds nothing, and a leaked table grants nothing.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name!r}>"


def hash_token(token: str) -> str:
    """Return the stored form of an API token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_user(name: str) -> tuple[User, str]:
    """Create a user with a new API token; return the user and the token."""
    token = secrets.token_urlsafe(32)
    user = User(name=name, token_hash=hash_token(token))
    db.session.add(user)
    db.session.commit()
    return user, token


def user_for_token(token: str) -> User | None:
    """Return the user whose token this is, or None."""
    return db.session.execute(
        db.select(User).filter_by(token_hash=hash_token(token))
    ).scalar_one_or_none()


def products_page(page: int, per_page: int):
    """Return one page of products, ordered by id."""
    return db.paginate(
        db.select(Product).order_by(Product.id), page=page, per_page=per_page, error_out=False
    )
