"""The HTTP API and the SQS event handler. Handlers are thin: they parse the
request, call ``chalicelib`` or ``infra``, and shape the answer.

Runs as ``chalice local`` (with the repository root on PYTHONPATH) and as
API Gateway + Lambda after ``chalice deploy``. It must not import pandas or
pyarrow: Lambda's package limit is 250 MB.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid

from botocore.exceptions import ClientError
from chalice import Chalice

from chalicelib.analysis.routes import bp as analysis_routes
from chalicelib.http import (
    ApiError,
    error_response,
    json_body,
    json_response,
    normalise,
    translate_errors,
)
from chalicelib.multipart import parse as parse_multipart
from chalicelib.readiness import check_all
from chalicelib.uploads import (
    TRIP_CONTENT_TYPE,
    UploadRequest,
    create_upload,
    parse_upload_request,
    safe_name,
)
from chalicelib.views import job_view, legacy_task_view
from infra import jobs
from infra.aws import s3_client, s3_presign_client
from infra.db import get_engine
from infra.schema import JOB_STATUSES
from infra.settings import get_settings

app = Chalice(app_name="taxi-ingest")
app.log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
#: JSON routes take these too: curl -d sends form-encoded by default, and a
#: client should not get a 415 for a missing header when the body is JSON.
JSON_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain"]
app.api.binary_types.extend(["multipart/form-data", "application/octet-stream",
                             TRIP_CONTENT_TYPE])
# Browsers call the API from other origins (the bucket's CORS covers uploads).
app.api.cors = True
app.register_blueprint(analysis_routes)
logger = logging.getLogger(__name__)


@app.middleware("http")
def error_shape(event, get_response):
    try:
        return normalise(get_response(event))
    except ApiError as exc:
        return exc.to_response()
    except Exception:
        logger.exception("unhandled error on %s %s", event.method, event.path)
        return error_response(500, "internal_error",
                              "The server failed to handle the request; it has been "
                              "logged. Try again, and report it if it persists.")


def _base_url() -> str:
    request = app.current_request
    headers = request.headers
    scheme = headers.get("x-forwarded-proto", "http")
    host = headers.get("host", "localhost")
    stage = request.context.get("stage") if host.endswith("amazonaws.com") else None
    return f"{scheme}://{host}" + (f"/{stage}" if stage else "")


def _job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, "invalid_job_id",
                       "The job id must be a UUID such as the 'job_id' POST /uploads "
                       "returned.") from None


def _load_job(raw_id: str) -> jobs.Job:
    job_id = _job_id(raw_id)
    with get_engine().connect() as conn:
        job = jobs.get(conn, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"There is no job {job_id}.")
    return job


@app.route("/uploads", methods=["POST"], content_types=JSON_TYPES)
@translate_errors
def create_upload_session():
    settings = get_settings()
    request = parse_upload_request(json_body(app.current_request.raw_body), settings)
    with get_engine(settings).begin() as conn:
        body = create_upload(settings, conn, s3_presign_client(settings), request,
                             _base_url())
    return json_response(body, status=201)


@app.route("/jobs", methods=["GET"])
@translate_errors
def list_jobs():
    params = app.current_request.query_params or {}
    status = params.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise ApiError(400, "invalid_status",
                       f"'status' must be one of {', '.join(JOB_STATUSES)}.")
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 500:
        raise ApiError(400, "invalid_limit", "'limit' must be a whole number from 1 to 500.")
    with get_engine().connect() as conn:
        found = jobs.list_jobs(conn, status=status, limit=limit)
    base = _base_url()
    return json_response({"jobs": [job_view(job, base) for job in found]})


@app.route("/jobs/{job_id}", methods=["GET"])
@translate_errors
def get_job(job_id):
    return json_response(job_view(_load_job(job_id), _base_url()))


@app.route("/jobs/{job_id}/rejects", methods=["GET"])
@translate_errors
def get_rejects(job_id):
    job = _load_job(job_id)
    if not job.rejects_key:
        raise ApiError(404, "no_rejects",
                       f"Job {job.id} has no rejected rows" +
                       ("." if job.status == "succeeded" else f" (it is {job.status})."))
    settings = get_settings()
    try:
        s3_client(settings).head_object(Bucket=settings.s3_bucket, Key=job.rejects_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
            raise
        raise ApiError(410, "rejects_gone",
                       f"The rejects file of job {job.id} is no longer in the bucket "
                       "(deleted, or lost with a LocalStack restart). Upload the trip "
                       "file again to rebuild it.") from None
    url = s3_presign_client(settings).generate_presigned_url(
        "get_object", Params={"Bucket": settings.s3_bucket, "Key": job.rejects_key},
        ExpiresIn=settings.upload_url_expiry_seconds)
    return json_response({"job_id": str(job.id), "key": job.rejects_key, "url": url,
                          "rows": job.rows_rejected,
                          "expires_in_seconds": settings.upload_url_expiry_seconds})


@app.route("/health", methods=["GET"])
@translate_errors
def health():
    return json_response({"status": "ok"})


@app.route("/ready", methods=["GET"])
@translate_errors
def ready():
    ok, checks = check_all(get_settings())
    return json_response({"status": "ready" if ok else "not_ready", "checks": checks},
                         status=200 if ok else 503)


@app.route("/upload", methods=["POST"],
           content_types=["multipart/form-data", "application/octet-stream",
                          TRIP_CONTENT_TYPE])
@translate_errors
def legacy_upload():
    """The old system's upload: the file in the body. The API only stores it;
    the S3 event starts the work, exactly as for a presigned upload."""
    settings = get_settings()
    request = app.current_request
    body = request.raw_body or b""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        parts = parse_multipart(content_type, body, max_bytes=settings.max_direct_upload_bytes)
        files = [p for p in parts if p.name == "file" and p.filename is not None]
        if not files:
            raise ApiError(400, "missing_file", "Send the parquet file in a form field "
                           "named 'file'.")
        filename, data = files[0].filename, bytes(files[0].data)
    else:
        filename = (request.query_params or {}).get("filename", "")
        data = body
    if len(data) > settings.max_direct_upload_bytes:
        raise ApiError(413, "file_too_large",
                       f"POST /upload takes files up to {settings.max_direct_upload_bytes} "
                       "bytes; use POST /uploads and a presigned URL for larger ones.")
    upload = parse_upload_request({"filename": filename, "size": len(data)}, settings)
    with get_engine(settings).begin() as conn:
        created = create_upload(settings, conn, s3_presign_client(settings),
                                UploadRequest(upload.filename, upload.size, "trips", "PUT"),
                                _base_url())
    s3_client(settings).put_object(Bucket=settings.s3_bucket, Key=created["key"], Body=data,
                                   ContentType=TRIP_CONTENT_TYPE)
    return json_response({"task_id": created["job_id"], "job_id": created["job_id"],
                          "filename": safe_name(upload.filename), "key": created["key"],
                          "status_url": created["status_url"]}, status=202)


@app.route("/task-status/{task_id}", methods=["GET"])
@translate_errors
def legacy_task_status(task_id):
    with get_engine().connect() as conn:
        job = None
        try:
            job = jobs.get(conn, uuid.UUID(task_id))
        except ValueError:
            pass
        job = job or jobs.get_by_task_id(conn, task_id)
    if job is None:
        raise ApiError(404, "task_not_found", f"There is no task or job {task_id[:64]}.")
    return json_response(legacy_task_view(job))


@functools.cache
def _bridge():
    from infra.bridge import build_bridge

    return build_bridge(get_settings())


@app.on_sqs_message(queue=os.environ.get("INGEST_QUEUE_NAME", "taxi-ingest-events"),
                    batch_size=10)
def on_ingest_event(event):
    """On AWS, Lambda's SQS event source does what ``python -m infra.bridge``
    does locally, through the same ``Bridge.handle_body``. A failed record
    fails the batch, so SQS delivers it again; the others are safe to repeat
    because a load is idempotent per object."""
    bridge = _bridge()
    failures = 0
    for record in event:
        try:
            bridge.handle_body(record.body)
        except Exception:
            logger.exception("SQS message %s failed", record.to_dict().get("messageId"))
            failures += 1
    if failures:
        raise RuntimeError(f"{failures} message(s) failed; SQS will deliver them again")
