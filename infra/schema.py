"""The database tables, as SQLAlchemy metadata. Migrations are generated from
and checked against this module; nothing creates tables from it directly."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

JOB_STATUSES = ("awaiting_upload", "queued", "running", "succeeded", "failed")

ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("bucket", Text, nullable=False),
    Column("object_key", Text, nullable=False),
    Column("filename", Text, nullable=False),
    # "api" when created by POST /uploads, "event" for objects nobody announced.
    Column("source", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("declared_size", BigInteger),
    Column("size_bytes", BigInteger),
    Column("etag", Text),
    # The etag of the object version whose rows are in yellow_taxi_trips.
    Column("loaded_etag", Text),
    Column("celery_task_id", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Events or tasks for a version that was already loaded, and so skipped.
    Column("duplicates_skipped", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False,
           server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False,
           server_default=func.now()),
    Column("queued_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("schema_kind", Text),
    Column("file_month", String(7)),
    Column("rows_in", BigInteger),
    Column("rows_loaded", BigInteger),
    Column("rows_rejected", BigInteger),
    Column("rejected_by_reason", JSONB),
    Column("rules", JSONB),
    Column("rejects_key", Text),
    Column("error_code", String(64)),
    Column("error_message", Text),
    UniqueConstraint("bucket", "object_key", name="uq_ingest_jobs_object"),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in JOB_STATUSES) + ")",
        name="ck_ingest_jobs_status",
    ),
)
Index("ix_ingest_jobs_created_at", ingest_jobs.c.created_at.desc())
Index("ix_ingest_jobs_status", ingest_jobs.c.status)
Index("ix_ingest_jobs_celery_task_id", ingest_jobs.c.celery_task_id)

# Column order here is the order the worker COPYs in; keep them together.
TRIP_COLUMNS = (
    ("vendor_id", SmallInteger),
    ("pickup_at", DateTime),
    ("dropoff_at", DateTime),
    ("passenger_count", SmallInteger),
    ("trip_distance", Double),
    ("ratecode_id", SmallInteger),
    ("store_and_fwd_flag", Text),
    ("pickup_location_id", SmallInteger),
    ("dropoff_location_id", SmallInteger),
    ("payment_type", SmallInteger),
    ("fare_amount", Double),
    ("extra", Double),
    ("mta_tax", Double),
    ("tip_amount", Double),
    ("tolls_amount", Double),
    ("improvement_surcharge", Double),
    ("total_amount", Double),
    ("congestion_surcharge", Double),
    ("airport_fee", Double),
    ("cbd_congestion_fee", Double),
)

yellow_taxi_trips = Table(
    "yellow_taxi_trips",
    metadata,
    *(Column(name, type_) for name, type_ in TRIP_COLUMNS),
    Column(
        "trip_duration_seconds",
        Integer,
        Computed("(extract(epoch from (dropoff_at - pickup_at)))::integer",
                 persisted=True),
    ),
    Column("job_id", UUID(as_uuid=True), nullable=False),
)
Index("ix_yellow_taxi_trips_job_id", yellow_taxi_trips.c.job_id)

dim_taxi_zones = Table(
    "dim_taxi_zones",
    metadata,
    Column("location_id", SmallInteger, primary_key=True),
    Column("borough", Text),
    Column("zone", Text),
    Column("service_zone", Text),
)

dashboard_analysis_reports = Table(
    "dashboard_analysis_reports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False,
           server_default=func.now()),
    Column("file_names", JSONB, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("markdown", Text, nullable=False),
    Column("structured", JSONB, nullable=False),
    Column("usage", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
Index("ix_dashboard_analysis_reports_created_at",
      dashboard_analysis_reports.c.created_at.desc())
