"""How jobs look in API answers."""

from __future__ import annotations

from typing import Any

from infra.jobs import Job


def job_view(job: Job, base_url: str) -> dict[str, Any]:
    rejected = job.rejected_by_reason or {}
    return {
        "job_id": str(job.id),
        "status": job.status,
        "filename": job.filename,
        "bucket": job.bucket,
        "key": job.object_key,
        "source": job.source,
        "size_bytes": job.size_bytes if job.size_bytes is not None else job.declared_size,
        "etag": job.etag,
        "task_id": job.celery_task_id,
        "attempts": job.attempts,
        "duplicates_skipped": job.duplicates_skipped,
        "created_at": _iso(job.created_at),
        "queued_at": _iso(job.queued_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "file_month": job.file_month,
        "counts": {
            "rows_in": job.rows_in,
            "rows_loaded": job.rows_loaded,
            "rows_rejected": job.rows_rejected,
            "rejected_by_reason": {k: v for k, v in sorted(rejected.items()) if v},
        },
        "rules": job.rules,
        "rejects": ({"key": job.rejects_key, "url": f"{base_url}/jobs/{job.id}/rejects"}
                    if job.rejects_key else None),
        "error": ({"code": job.error_code, "message": job.error_message}
                  if job.error_code else None),
        "links": {"self": f"{base_url}/jobs/{job.id}"},
    }


def legacy_task_view(job: Job) -> dict[str, Any]:
    """The old ``GET /task-status/{task_id}`` answer: Celery-style states."""
    state = {
        "awaiting_upload": "PENDING", "queued": "PENDING", "running": "STARTED",
        "succeeded": "SUCCESS", "failed": "FAILURE",
    }[job.status]
    body: dict[str, Any] = {"task_id": job.celery_task_id or str(job.id),
                            "job_id": str(job.id), "status": state}
    if job.status == "succeeded":
        body["result"] = {"rows_in": job.rows_in, "rows_loaded": job.rows_loaded,
                          "rows_rejected": job.rows_rejected}
    if job.status == "failed":
        body["error"] = job.error_message
    return body


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
