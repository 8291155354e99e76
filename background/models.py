"""The rows of background work: jobs, and the audit trail."""
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models import NEVER_REUSE_IDS, User, UTCDateTime, db, utcnow

PATH_LENGTH = 2000
ADDRESS_LENGTH = 45  # the longest textual IPv6 address
POLLING_URL_LENGTH = 500
JOB_NAME_LENGTH = 40
ERROR_TYPE_LENGTH = 100
ERROR_MESSAGE_LENGTH = 500
STATES = ("PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "REVOKED")
UNFINISHED = ("PENDING", "STARTED", "PROGRESS")
RUNNING = ("STARTED", "PROGRESS")
FINISHED = ("SUCCESS", "FAILURE", "REVOKED")


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

    @property
    def ready(self) -> bool:
        return self.state in FINISHED

    @property
    def successful(self) -> bool:
        return self.state == "SUCCESS"

    @property
    def value(self) -> Any:
        """The result once the job has succeeded, else None."""
        return self.result if self.successful else None

    @property
    def progress(self) -> dict[str, int] | None:
        if self.progress_total is None:
            return None
        return {"current": self.progress_current, "total": self.progress_total}

    @property
    def error(self) -> dict[str, str] | None:
        if self.error_type is None:
            return None
        return {"type": self.error_type, "message": self.error_message}

    @property
    def owner_name(self) -> str | None:
        return self.owner.name if self.owner else None

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

    @property
    def user_name(self) -> str | None:
        return self.user.name if self.user else None


def jobs_page(page: int, per_page: int, state: str | None = None):
    """Return one page of jobs, newest first, with their owners, in one query (plus the count)."""
    query = db.select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if state:
        query = query.where(Job.state == state)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def audit_page(page: int, per_page: int):
    """Return one page of audit events, newest first."""
    query = db.select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def clip(text: str | None, length: int) -> str | None:
    """Return text cut to length characters, so that any value fits its column."""
    return text if text is None or len(text) <= length else text[:length]

