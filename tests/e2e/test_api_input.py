"""What the HTTP surface does with bad input, and what it never reveals."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

from tests.conftest import FIXTURES

pytestmark = pytest.mark.e2e

_LEAKS = re.compile(r"Traceback|File \"/|postgresql://|amqp://|guest:guest|"
                    r"AWS_SECRET|aws_secret|sqlalchemy|pg8000", re.IGNORECASE)


def _error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert not _LEAKS.search(response.text), response.text
    return body["error"]


@pytest.mark.parametrize(("payload", "status", "code"), [
    (b"{not json", 400, "invalid_json"),
    (b"", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b'{"filename": "a.parquet"}', 400, "invalid_size"),
    (b'{"filename": "a.parquet", "size": -5}', 400, "invalid_size"),
    (b'{"filename": "a.parquet", "size": 1e30}', 400, "invalid_size"),
    (b'{"filename": "a.parquet", "size": 99999999999999}', 413, "file_too_large"),
    (b'{"filename": "report.pdf", "size": 10}', 400, "unsupported_file_type"),
    (b'{"filename": "a.parquet", "size": 10, "key": "raw/mine.parquet"}', 201, None),
])
def test_upload_requests(stack, payload, status, code):
    response = requests.post(f"{stack.api}/uploads", data=payload,
                             headers={"Content-Type": "application/json"}, timeout=30)
    if code is None:
        assert response.status_code == status
        # The client's "key" is ignored: the server chooses.
        body = response.json()
        assert body["key"] == f"raw/{body['job_id']}/a.parquet"
    else:
        _error(response, status, code)


def test_job_ids_that_are_not_uuids_are_400(stack):
    _error(requests.get(f"{stack.api}/jobs/not-a-uuid", timeout=30), 400, "invalid_job_id")
    _error(requests.get(f"{stack.api}/jobs/1%27%20OR%201=1", timeout=30), 400,
           "invalid_job_id")


def test_unknown_jobs_are_404(stack):
    _error(requests.get(f"{stack.api}/jobs/{uuid.uuid4()}", timeout=30), 404, "job_not_found")
    _error(requests.get(f"{stack.api}/task-status/nope", timeout=30), 404, "task_not_found")


def test_bad_list_filters_are_400(stack):
    _error(requests.get(f"{stack.api}/jobs", params={"status": "done"}, timeout=30), 400,
           "invalid_status")
    _error(requests.get(f"{stack.api}/jobs", params={"limit": "0"}, timeout=30), 400,
           "invalid_limit")


def test_a_direct_upload_over_the_limit_is_413(stack):
    big = b"PAR1" + bytes(6 * 1024 * 1024)
    response = requests.post(f"{stack.api}/upload", files={"file": ("big.parquet", big)},
                             timeout=60)
    _error(response, 413, "request_too_large")


def test_a_direct_upload_without_a_file_is_400(stack):
    response = requests.post(f"{stack.api}/upload", files={"other": ("a.parquet", b"x")},
                             timeout=30)
    _error(response, 400, "missing_file")


def test_an_unknown_route_is_404_in_the_common_shape(stack):
    _error(requests.get(f"{stack.api}/no/such/route", timeout=30), 404, "not_found")
    _error(requests.delete(f"{stack.api}/jobs", timeout=30), 405, "method_not_allowed")


def test_an_unsupported_content_type_is_415_in_the_common_shape(stack):
    response = requests.post(f"{stack.api}/uploads", data=b"<x/>",
                             headers={"Content-Type": "application/xml"}, timeout=30)
    _error(response, 415, "unsupported_media_type")


# -- upload security ---------------------------------------------------------

def test_a_put_larger_than_signed_is_refused_by_s3(stack):
    session = stack.create_upload("small.parquet", 100).json()
    response = requests.put(session["upload"]["url"], data=bytes(5000),
                            headers={**session["upload"]["headers"], "Content-Length": "5000"},
                            timeout=30)
    assert response.status_code == 403


def test_a_url_cannot_be_used_for_another_key(stack):
    data = (FIXTURES / "yellow_2015-01.parquet").read_bytes()
    session = stack.create_upload("mine.parquet", len(data)).json()
    other = session["upload"]["url"].replace(session["job_id"], str(uuid.uuid4()))
    response = requests.put(other, data=data, headers=session["upload"]["headers"], timeout=30)
    assert response.status_code == 403
    escaped = session["upload"]["url"].replace("/raw/", "/elsewhere/")
    assert requests.put(escaped, data=data, headers=session["upload"]["headers"],
                        timeout=30).status_code == 403


def test_a_client_cannot_escape_its_jobs_prefix(stack):
    for name in ("../../rejects/x.parquet", "/etc/passwd.parquet", "..\\..\\a.parquet"):
        body = stack.create_upload(name, 10).json()
        assert body["key"].startswith(f"raw/{body['job_id']}/")
        assert ".." not in body["key"] and "\\" not in body["key"]


def test_an_expired_url_is_refused(stack):
    data = (FIXTURES / "yellow_2015-01.parquet").read_bytes()
    default = stack.create_upload("default.parquet", len(data)).json()
    assert "X-Amz-Expires=900" in default["upload"]["url"]  # 15 minutes by default
    api = stack.extra_api("api-short-urls", {"UPLOAD_URL_EXPIRY_SECONDS": "1"})
    session = requests.post(f"{api}/uploads", json={"filename": "late.parquet",
                                                    "size": len(data)}, timeout=30).json()
    assert "X-Amz-Expires=1&" in session["upload"]["url"]
    time.sleep(2.5)
    response = requests.put(session["upload"]["url"], data=data,
                            headers=session["upload"]["headers"], timeout=30)
    assert response.status_code == 403
    assert b"expired" in response.content.lower()
    assert stack.job(session["job_id"])["status"] == "awaiting_upload"


def test_browsers_may_call_the_api_from_another_origin(stack):
    preflight = requests.options(f"{stack.api}/uploads", headers={
        "Origin": "https://dashboard.example", "Access-Control-Request-Method": "POST"},
        timeout=30)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
