"""The job repository: every read and write of ``ingest_jobs``.

Functions take a SQLAlchemy connection so that the worker can update a job
in the same transaction as the rows it loads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select, update
from sqlalchemy.dialects.postgresql import insert

from infra.schema import ingest_jobs as jobs_table

TERMINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    bucket: str
    object_key: str
    filename: str
    source: str
    status: str
    declared_size: int | None
    size_bytes: int | None
    etag: str | None
    loaded_etag: str | None
    celery_task_id: str | None
    attempts: int
    duplicates_skipped: int
    created_at: dt.datetime
    updated_at: dt.datetime
    queued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    schema_kind: str | None
    file_month: str | None
    rows_in: int | None
    rows_loaded: int | None
    rows_rejected: int | None
    rejected_by_reason: dict[str, int] | None
    rules: list[str] | None
    rejects_key: str | None
    error_code: str | None
    error_message: str | None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(**dict(row._mapping))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def create(conn: Connection, *, job_id: uuid.UUID, bucket: str, key: str,
           filename: str, declared_size: int | None, source: str = "api",
           status: str = "awaiting_upload") -> Job:
    row = conn.execute(
        jobs_table.insert()
        .values(id=job_id, bucket=bucket, object_key=key, filename=filename,
                declared_size=declared_size, source=source, status=status)
        .returning(*jobs_table.c)
    ).one()
    return Job.from_row(row)


def get(conn: Connection, job_id: uuid.UUID) -> Job | None:
    row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
    return Job.from_row(row) if row else None


def get_by_task_id(conn: Connection, task_id: str) -> Job | None:
    row = conn.execute(
        select(jobs_table).where(jobs_table.c.celery_task_id == task_id)
    ).first()
    return Job.from_row(row) if row else None


def get_by_object(conn: Connection, bucket: str, key: str) -> Job | None:
    row = conn.execute(
        select(jobs_table).where(jobs_table.c.bucket == bucket,
                                 jobs_table.c.object_key == key)
    ).first()
    return Job.from_row(row) if row else None


def list_jobs(conn: Connection, *, status: str | None = None, limit: int = 50,
              before: dt.datetime | None = None) -> list[Job]:
    query = select(jobs_table).order_by(jobs_table.c.created_at.desc(),
                                        jobs_table.c.id.desc()).limit(limit)
    if status:
        query = query.where(jobs_table.c.status == status)
    if before:
        query = query.where(jobs_table.c.created_at < before)
    return [Job.from_row(row) for row in conn.execute(query)]


def find_or_create_for_object(conn: Connection, *, bucket: str, key: str,
                              filename: str, size: int | None) -> Job:
    """The job an ObjectCreated event belongs to. An object nobody announced
    through the API gets a job of its own, once, however many events say so."""
    statement = (
        insert(jobs_table)
        .values(id=uuid.uuid4(), bucket=bucket, object_key=key, filename=filename,
                source="event", status="queued", size_bytes=size)
        .on_conflict_do_nothing(constraint="uq_ingest_jobs_object")
    )
    conn.execute(statement)
    job = get_by_object(conn, bucket, key)
    if job is None:  # pragma: no cover - the insert above guarantees a row
        raise RuntimeError(f"job for s3://{bucket}/{key} vanished")
    return job


def mark_queued(conn: Connection, job_id: uuid.UUID, *, task_id: str,
                etag: str | None, size: int | None) -> None:
    """Record, before publishing, that a task for this object version is on its
    way. Marking first means a fast worker can never finish before the job
    says queued and then be overwritten by it."""
    values: dict[str, Any] = {"celery_task_id": task_id, "updated_at": func.now(),
                              "queued_at": func.now()}
    if etag:
        values["etag"] = etag
    if size is not None:
        values["size_bytes"] = size
    conn.execute(
        update(jobs_table).where(jobs_table.c.id == job_id)
        .values(**values, status=_queued_unless_busy(etag))
    )


def _queued_unless_busy(etag: str | None):
    """A running job stays running, and a job that already loaded this very
    version stays succeeded (the worker will skip the duplicate)."""
    already_loaded = (jobs_table.c.status == "succeeded") & (
        jobs_table.c.loaded_etag == etag)
    return case(
        (already_loaded, jobs_table.c.status),
        (jobs_table.c.status.in_(("awaiting_upload", "failed", "succeeded")), "queued"),
        else_=jobs_table.c.status,
    )


def lock_for_load(conn: Connection, job_id: uuid.UUID) -> Job | None:
    """Take the job's row lock for the rest of the transaction. A second
    worker given the same job waits here until the first commits."""
    row = conn.execute(
        select(jobs_table).where(jobs_table.c.id == job_id).with_for_update()
    ).first()
    return Job.from_row(row) if row else None


def mark_duplicate_skipped(conn: Connection, job_id: uuid.UUID) -> None:
    conn.execute(
        update(jobs_table).where(jobs_table.c.id == job_id).values(
            duplicates_skipped=jobs_table.c.duplicates_skipped + 1, updated_at=func.now())
    )


def mark_running(conn: Connection, job_id: uuid.UUID, *, task_id: str | None) -> None:
    conn.execute(
        update(jobs_table).where(jobs_table.c.id == job_id).values(
            status="running", started_at=func.now(), updated_at=func.now(),
            attempts=jobs_table.c.attempts + 1, error_code=None, error_message=None,
            **({"celery_task_id": task_id} if task_id else {}),
        )
    )


def mark_succeeded(conn: Connection, job_id: uuid.UUID, *, etag: str | None,
                   summary: dict[str, Any]) -> None:
    conn.execute(
        update(jobs_table).where(jobs_table.c.id == job_id).values(
            status="succeeded", finished_at=func.clock_timestamp(),
            updated_at=func.clock_timestamp(),
            loaded_etag=etag, error_code=None, error_message=None, **summary,
        )
    )


def mark_failed(conn: Connection, job_id: uuid.UUID, *, code: str, message: str,
                summary: dict[str, Any] | None = None) -> None:
    """Fail the job. The caller removes the job's rows in the same
    transaction, so a failed job never has rows in ``yellow_taxi_trips``, and
    the counts of an earlier load go with them. Times are the clock's, not the
    transaction's start (a load's transaction lasts as long as its COPY)."""
    cleared = {"rows_in": None, "rows_loaded": 0, "rows_rejected": None,
               "rejected_by_reason": None, "rejects_key": None, "loaded_etag": None}
    conn.execute(
        update(jobs_table).where(jobs_table.c.id == job_id).values(
            status="failed", finished_at=func.clock_timestamp(),
            updated_at=func.clock_timestamp(), error_code=code, error_message=message,
            **{**cleared, **(summary or {})},
        )
    )
