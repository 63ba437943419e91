"""Upload sessions: a job row plus a presigned URL for an object key the
server chooses. The client's file name is kept for display only; it never
decides where an object lands."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.http import ApiError
from infra import jobs
from infra.provision import INGEST_SUFFIXES
from infra.settings import Settings

#: Upload kinds the API hands out URLs for, with the suffixes each accepts.
TRIP_SUFFIXES = INGEST_SUFFIXES
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
TRIP_CONTENT_TYPE = "application/vnd.apache.parquet"
_MAX_NAME = 120
_KNOWN_SUFFIXES = sorted(set(TRIP_SUFFIXES + IMAGE_SUFFIXES), key=len, reverse=True)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    size: int
    kind: str  # "trips" or "dashboard_image"
    method: str  # "PUT" or "POST"


def parse_upload_request(body: dict[str, Any], settings: Settings) -> UploadRequest:
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise ApiError(400, "invalid_filename",
                       "Give 'filename' as a non-empty string, e.g. "
                       "'yellow_tripdata_2025-01.parquet'.")
    if len(filename) > 1024:
        raise ApiError(400, "invalid_filename", "'filename' is longer than 1024 characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in filename):
        raise ApiError(400, "invalid_filename",
                       "'filename' holds control characters; send the file's plain name.")
    kind = body.get("kind", "trips")
    if kind not in ("trips", "dashboard_image"):
        raise ApiError(400, "invalid_kind", "'kind' must be 'trips' or 'dashboard_image'.")
    suffixes = TRIP_SUFFIXES if kind == "trips" else IMAGE_SUFFIXES
    if not filename.lower().endswith(suffixes):
        raise ApiError(400, "unsupported_file_type",
                       f"'{_shorten(filename)}' is not a {' or '.join(suffixes)} file; "
                       f"this API accepts {', '.join(suffixes)} for kind '{kind}'.")
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int):
        raise ApiError(400, "invalid_size",
                       "Give 'size' as the file's length in bytes (an integer).")
    if size <= 0:
        raise ApiError(400, "invalid_size", "'size' must be greater than zero.")
    if size > settings.max_upload_bytes:
        raise ApiError(413, "file_too_large",
                       f"The file is {size} bytes; the limit is {settings.max_upload_bytes} "
                       "bytes (MAX_UPLOAD_BYTES). Split the file or raise the limit.")
    method = str(body.get("method", "PUT")).upper()
    if method not in ("PUT", "POST"):
        raise ApiError(400, "invalid_method", "'method' must be 'PUT' or 'POST'.")
    return UploadRequest(filename=filename, size=size, kind=kind, method=method)


def safe_name(filename: str) -> str:
    """A key-safe version of the client's file name: path parts dropped,
    letters folded to ASCII, anything else replaced, length capped, and a
    known suffix kept in lower case (S3 notification filters match case)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", folded)
    suffix = next((s for s in _KNOWN_SUFFIXES if cleaned.lower().endswith(s)), "")
    if not suffix and "." in cleaned.strip("."):
        suffix = "." + cleaned.rpartition(".")[2].lower()[:10]
    stem = cleaned[: len(cleaned) - len(suffix)].strip("._")
    return (stem[: _MAX_NAME - len(suffix)].rstrip("._") or "upload") + suffix


def object_key(settings: Settings, job_id: uuid.UUID, filename: str, kind: str) -> str:
    prefix = settings.raw_prefix if kind == "trips" else settings.dashboards_prefix
    return f"{prefix}{job_id}/{safe_name(filename)}"


def content_type_for(kind: str, filename: str) -> str:
    lower = filename.lower()
    if kind == "trips":
        if lower.endswith(".csv"):
            return "text/csv"
        if lower.endswith(".csv.gz"):
            return "application/gzip"
        return TRIP_CONTENT_TYPE
    if lower.endswith(".png"):
        return "image/png"
    if lower.endswith(".webp"):
        return "image/webp"
    return "image/jpeg"


def presign(settings: Settings, presign_client, request: UploadRequest, key: str) -> dict:
    content_type = content_type_for(request.kind, request.filename)
    expiry = settings.upload_url_expiry_seconds
    if request.method == "PUT":
        url = presign_client.generate_presigned_url(
            "put_object",
            Params={"Bucket": settings.s3_bucket, "Key": key,
                    "ContentType": content_type, "ContentLength": request.size},
            ExpiresIn=expiry,
        )
        # Both headers are signed: S3 refuses a PUT that sends others.
        headers = {"Content-Type": content_type, "Content-Length": str(request.size)}
        return {"method": "PUT", "url": url, "headers": headers}
    post = presign_client.generate_presigned_post(
        Bucket=settings.s3_bucket, Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type},
                    ["content-length-range", 1, request.size]],
        ExpiresIn=expiry,
    )
    return {"method": "POST", "url": post["url"], "fields": post["fields"]}


def create_upload(settings: Settings, conn, presign_client, request: UploadRequest,
                  base_url: str) -> dict:
    job_id = uuid.uuid4()
    key = object_key(settings, job_id, request.filename, request.kind)
    upload = presign(settings, presign_client, request, key)
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(
        seconds=settings.upload_url_expiry_seconds)
    body = {
        "key": key,
        "upload": upload,
        "expires_at": expires_at.isoformat(timespec="seconds"),
    }
    if request.kind == "trips":
        jobs.create(conn, job_id=job_id, bucket=settings.s3_bucket, key=key,
                    filename=request.filename, declared_size=request.size)
        body = {"job_id": str(job_id), **body,
                "status_url": f"{base_url}/jobs/{job_id}"}
    return body


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
