"""Upload sessions: validation, server-chosen keys, URLs signed for the host
the client reaches (field notes F1, F2). Presigning is offline: no I/O."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlparse

import pytest

from chalicelib.http import ApiError
from chalicelib.uploads import object_key, parse_upload_request, presign, safe_name
from infra.aws import s3_presign_client
from infra.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(aws_endpoint_url="http://localstack:4566",
                    s3_public_endpoint_url="http://localhost:4566",
                    max_upload_bytes=1000, upload_url_expiry_seconds=600)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 400, "invalid_filename"),
    ({"filename": "", "size": 1}, 400, "invalid_filename"),
    ({"filename": "a\x00.parquet", "size": 1}, 400, "invalid_filename"),
    ({"filename": "a\nb.parquet", "size": 1}, 400, "invalid_filename"),
    ({"filename": "a.json", "size": 1}, 400, "unsupported_file_type"),
    ({"filename": "a.parquet.exe", "size": 1}, 400, "unsupported_file_type"),
    ({"filename": "a.parquet"}, 400, "invalid_size"),
    ({"filename": "a.parquet", "size": "10"}, 400, "invalid_size"),
    ({"filename": "a.parquet", "size": True}, 400, "invalid_size"),
    ({"filename": "a.parquet", "size": -1}, 400, "invalid_size"),
    ({"filename": "a.parquet", "size": 0}, 400, "invalid_size"),
    ({"filename": "a.parquet", "size": 1001}, 413, "file_too_large"),
    ({"filename": "a.parquet", "size": 10, "method": "GET"}, 400, "invalid_method"),
    ({"filename": "a.parquet", "size": 10, "kind": "x"}, 400, "invalid_kind"),
])
def test_bad_requests_get_a_code_and_a_status(body, status, code):
    with pytest.raises(ApiError) as error:
        parse_upload_request(body, SETTINGS)
    assert (error.value.status, error.value.code) == (status, code)


@pytest.mark.parametrize(("name", "safe"), [
    ("yellow_tripdata_2025-01.parquet", "yellow_tripdata_2025-01.parquet"),
    ("../../etc/passwd.parquet", "passwd.parquet"),
    ("C:\\Users\\me\\trips (copy).PARQUET", "trips_copy.parquet"),
    ("a b+c%20d.parquet", "a_b_c_20d.parquet"),
    ("Zürich-月.parquet", "Zurich-.parquet"),
    ("....parquet", "upload.parquet"),
    ("TRIPS.CSV.GZ", "TRIPS.csv.gz"),
    ("notes.txt", "notes.txt"),
])
def test_client_names_become_safe_key_parts(name, safe):
    assert safe_name(name) == safe


def test_long_names_are_capped_and_keep_their_suffix():
    name = safe_name("x" * 1000 + ".parquet")
    assert len(name) <= 120 and name.endswith(".parquet")


def test_the_key_is_the_servers_choice():
    job = uuid.uuid4()
    assert object_key(SETTINGS, job, "../../other/x.parquet", "trips") == \
        f"raw/{job}/x.parquet"
    assert object_key(SETTINGS, job, "d.png", "dashboard_image") == f"dashboards/{job}/d.png"


def test_put_url_is_signed_for_the_public_host_with_the_headers_to_send():
    request = parse_upload_request({"filename": "t.parquet", "size": 500}, SETTINGS)
    upload = presign(SETTINGS, s3_presign_client(SETTINGS), request, "raw/j/t.parquet")
    url = urlparse(upload["url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "localhost:4566",
                                                 "/taxi-ingest/raw/j/t.parquet")
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert upload["headers"] == {"Content-Type": "application/vnd.apache.parquet",
                                 "Content-Length": "500"}


def test_post_form_carries_a_length_range_for_browsers():
    request = parse_upload_request({"filename": "t.parquet", "size": 500, "method": "POST"},
                                   SETTINGS)
    upload = presign(SETTINGS, s3_presign_client(SETTINGS), request, "raw/j/t.parquet")
    assert upload["url"].startswith("http://localhost:4566/taxi-ingest")
    assert upload["fields"]["key"] == "raw/j/t.parquet"
    assert "policy" in upload["fields"] and "x-amz-signature" in upload["fields"]
