"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04 15:40:25.326782
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_analysis_reports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "file_names", postgresql.JSONB(astext_type=sa.Text()), nullable=False
        ),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column(
            "structured", postgresql.JSONB(astext_type=sa.Text()), nullable=False
        ),
        sa.Column(
            "usage",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_dashboard_analysis_reports_created_at",
        "dashboard_analysis_reports",
        [sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_table(
        "dim_taxi_zones",
        sa.Column("location_id", sa.SmallInteger(), nullable=False),
        sa.Column("borough", sa.Text(), nullable=True),
        sa.Column("zone", sa.Text(), nullable=True),
        sa.Column("service_zone", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("location_id"),
    )
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("declared_size", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("loaded_etag", sa.Text(), nullable=True),
        sa.Column("celery_task_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates_skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("schema_kind", sa.Text(), nullable=True),
        sa.Column("file_month", sa.String(length=7), nullable=True),
        sa.Column("rows_in", sa.BigInteger(), nullable=True),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=True),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=True),
        sa.Column(
            "rejected_by_reason", postgresql.JSONB(astext_type=sa.Text()), nullable=True
        ),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("rejects_key", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('awaiting_upload', 'queued', 'running', 'succeeded', 'failed')",
            name="ck_ingest_jobs_status",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket", "object_key", name="uq_ingest_jobs_object"),
    )
    op.create_index(
        "ix_ingest_jobs_celery_task_id", "ingest_jobs", ["celery_task_id"], unique=False
    )
    op.create_index(
        "ix_ingest_jobs_created_at",
        "ingest_jobs",
        [sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index("ix_ingest_jobs_status", "ingest_jobs", ["status"], unique=False)
    op.create_table(
        "yellow_taxi_trips",
        sa.Column("vendor_id", sa.SmallInteger(), nullable=True),
        sa.Column("pickup_at", sa.DateTime(), nullable=True),
        sa.Column("dropoff_at", sa.DateTime(), nullable=True),
        sa.Column("passenger_count", sa.SmallInteger(), nullable=True),
        sa.Column("trip_distance", sa.Double(), nullable=True),
        sa.Column("ratecode_id", sa.SmallInteger(), nullable=True),
        sa.Column("store_and_fwd_flag", sa.Text(), nullable=True),
        sa.Column("pickup_location_id", sa.SmallInteger(), nullable=True),
        sa.Column("dropoff_location_id", sa.SmallInteger(), nullable=True),
        sa.Column("payment_type", sa.SmallInteger(), nullable=True),
        sa.Column("fare_amount", sa.Double(), nullable=True),
        sa.Column("extra", sa.Double(), nullable=True),
        sa.Column("mta_tax", sa.Double(), nullable=True),
        sa.Column("tip_amount", sa.Double(), nullable=True),
        sa.Column("tolls_amount", sa.Double(), nullable=True),
        sa.Column("improvement_surcharge", sa.Double(), nullable=True),
        sa.Column("total_amount", sa.Double(), nullable=True),
        sa.Column("congestion_surcharge", sa.Double(), nullable=True),
        sa.Column("airport_fee", sa.Double(), nullable=True),
        sa.Column("cbd_congestion_fee", sa.Double(), nullable=True),
        sa.Column(
            "trip_duration_seconds",
            sa.Integer(),
            sa.Computed(
                "(extract(epoch from (dropoff_at - pickup_at)))::integer",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("job_id", sa.UUID(), nullable=False),
    )
    op.create_index(
        "ix_yellow_taxi_trips_job_id", "yellow_taxi_trips", ["job_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_yellow_taxi_trips_job_id", table_name="yellow_taxi_trips")
    op.drop_table("yellow_taxi_trips")
    op.drop_index("ix_ingest_jobs_status", table_name="ingest_jobs")
    op.drop_index("ix_ingest_jobs_created_at", table_name="ingest_jobs")
    op.drop_index("ix_ingest_jobs_celery_task_id", table_name="ingest_jobs")
    op.drop_table("ingest_jobs")
    op.drop_table("dim_taxi_zones")
    op.drop_index(
        "ix_dashboard_analysis_reports_created_at",
        table_name="dashboard_analysis_reports",
    )
    op.drop_table("dashboard_analysis_reports")
