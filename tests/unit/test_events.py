"""S3 notifications as they reach SQS (field notes F3, F4)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from infra.events import (
    ObjectCreated,
    S3TestEvent,
    UnparseableMessage,
    decode_key,
    parse_body,
)

pytestmark = pytest.mark.unit


def _record(key: str, name: str = "ObjectCreated:Put", **obj) -> dict:
    return {"eventSource": "aws:s3", "eventName": name, "eventTime": "2026-01-01T00:00:00Z",
            "s3": {"bucket": {"name": "b"}, "object": {"key": key, **obj}}}


def test_test_event_is_recognised():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert parse_body(body) == S3TestEvent(bucket="b")


@pytest.mark.parametrize("original", [
    "raw/a b.parquet", "raw/a+b.parquet", "raw/100%.parquet", "raw/trips (copy).parquet",
    "raw/Zürich_Ünïcødé_月.parquet", "raw/" + "x" * 1000 + ".parquet", "raw/a%2Bb.parquet",
])
def test_keys_are_decoded_exactly_once(original):
    # LocalStack percent-encodes every reserved character; AWS writes '+' for
    # a space. Both decode to the real key, and a literal '%2B' survives.
    for encoded in (quote(original), quote(original).replace("%20", "+")):
        (event,) = parse_body(json.dumps({"Records": [_record(encoded)]}))
        assert event.key == original


def test_decode_key_does_not_decode_twice():
    assert decode_key("a%252B.parquet") == "a%2B.parquet"


def test_record_fields_are_typed():
    body = json.dumps({"Records": [_record("raw/x.parquet", size=42, eTag='"abc"')]})
    assert parse_body(body) == [ObjectCreated(
        bucket="b", key="raw/x.parquet", size=42, etag="abc",
        event_name="ObjectCreated:Put", event_time="2026-01-01T00:00:00Z")]


def test_other_event_types_are_dropped():
    body = json.dumps({"Records": [_record("raw/x.parquet", name="ObjectRemoved:Delete"),
                                   _record("raw/y.parquet")]})
    assert [e.key for e in parse_body(body)] == ["raw/y.parquet"]


def test_sns_wrapped_notification_is_unwrapped():
    inner = json.dumps({"Records": [_record("raw/x.parquet")]})
    body = json.dumps({"Type": "Notification", "Message": inner})
    assert [e.key for e in parse_body(body)] == ["raw/x.parquet"]


@pytest.mark.parametrize("body", [
    "not json", "[]", "null", json.dumps({"hello": "world"}),
    json.dumps({"Records": "nope"}), json.dumps({"Records": [42]}),
    json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}),
])
def test_anything_else_is_unparseable(body):
    with pytest.raises(UnparseableMessage):
        parse_body(body)
