"""S3 event notifications, as they arrive in SQS, turned into typed values.

Pure: no I/O. The object key is URL-decoded here, once, and nowhere else.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any


class UnparseableMessage(ValueError):
    """The message body is not an S3 event notification."""


@dataclass(frozen=True)
class S3TestEvent:
    """Sent once when a bucket notification configuration is put."""

    bucket: str | None


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int | None
    etag: str | None
    event_name: str
    event_time: str | None


def decode_key(raw_key: str) -> str:
    """Event keys are form-encoded: '+' is a space, '%2B' a plus sign."""
    return urllib.parse.unquote_plus(raw_key)


def parse_body(body: str | bytes) -> S3TestEvent | list[ObjectCreated]:
    """One SQS message body: a test event, or the ObjectCreated records in it.

    Records of other event types (deletes, restores) are dropped. A body that
    is neither raises ``UnparseableMessage``.
    """
    try:
        document = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise UnparseableMessage(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnparseableMessage("body is JSON but not an object")
    # SNS-wrapped notifications carry the S3 event as a string in "Message".
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return parse_body(document["Message"])
    if document.get("Event") == "s3:TestEvent":
        return S3TestEvent(bucket=document.get("Bucket"))
    records = document.get("Records")
    if not isinstance(records, list):
        raise UnparseableMessage("body has no 'Records' list and is not an s3:TestEvent")
    return [event for event in map(_parse_record, records) if event is not None]


def _parse_record(record: Any) -> ObjectCreated | None:
    if not isinstance(record, dict):
        raise UnparseableMessage("a record is not an object")
    name = record.get("eventName", "")
    if record.get("eventSource") != "aws:s3" or not str(name).startswith("ObjectCreated:"):
        return None
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError):
        raise UnparseableMessage(
            "an ObjectCreated record lacks s3.bucket.name or s3.object.key") from None
    size = obj.get("size")
    etag = obj.get("eTag") or obj.get("etag")
    return ObjectCreated(
        bucket=bucket,
        key=decode_key(raw_key),
        size=int(size) if isinstance(size, (int, float, str)) and str(size).isdigit() else None,
        etag=str(etag).strip('"') if etag else None,
        event_name=name,
        event_time=record.get("eventTime"),
    )
