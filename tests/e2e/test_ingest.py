"""The main path through HTTP: presigned upload, S3 event, bridge, Celery,
Postgres, on real TLC files."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import requests

from tests.conftest import FIXTURES
from tests.stack import s3_event, wait_for

pytestmark = pytest.mark.e2e

YELLOW_2025 = FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet"
YELLOW_2015 = FIXTURES / "yellow_2015-01.parquet"
GREEN_2020 = FIXTURES / "2020-10_green_sample_data.parquet"


def _assert_reconciles(stack, job: dict, path) -> None:
    counts = job["counts"]
    assert job["status"] == "succeeded", job
    assert counts["rows_in"] == pq.ParquetFile(path).metadata.num_rows
    assert counts["rows_in"] == counts["rows_loaded"] + sum(
        counts["rejected_by_reason"].values())
    assert counts["rows_rejected"] == sum(counts["rejected_by_reason"].values())
    assert stack.rows_for(job["job_id"]) == counts["rows_loaded"]


def test_2025_sample_loads_with_exact_counts(stack):
    session = stack.upload_file(YELLOW_2025)
    job = stack.wait_job(session["job_id"])
    _assert_reconciles(stack, job, YELLOW_2025)
    # PROVENANCE.md counts 115 zero distances and 18 pickups outside January
    # in this file; one ride has 9 passengers.
    rejected = job["counts"]["rejected_by_reason"]
    assert rejected["non_positive_distance"] == 115
    assert rejected["pickup_outside_file_month"] == 18
    assert rejected["passenger_count_range"] == 1
    assert job["file_month"] == "2025-01"
    assert job["rejects"]["key"].startswith("rejects/")


def test_2015_file_with_null_typed_columns_loads_every_row(stack):
    session = stack.upload_file(YELLOW_2015)
    job = stack.wait_job(session["job_id"])
    _assert_reconciles(stack, job, YELLOW_2015)
    assert job["counts"]["rows_loaded"] == 100
    with stack.engine.connect() as conn:
        from sqlalchemy import text

        airport, congestion = conn.execute(text(
            "SELECT count(airport_fee), count(congestion_surcharge) FROM yellow_taxi_trips "
            "WHERE job_id = :j"), {"j": job["job_id"]}).one()
    assert (airport, congestion) == (0, 0)


def test_redelivered_event_loads_nothing_twice(stack):
    session = stack.upload_file(YELLOW_2015, "redelivered.parquet")
    job = stack.wait_job(session["job_id"])
    loaded = stack.rows_for(job["job_id"])
    event = s3_event(stack.bucket, job["key"], job["etag"], job["size_bytes"])
    for _ in range(2):
        stack.send_raw_event(event)
    wait_for(lambda: stack.job(job["job_id"])["duplicates_skipped"] == 2, 60,
             what="both duplicate events to be skipped")
    again = stack.job(job["job_id"])
    assert again["status"] == "succeeded"
    assert again["attempts"] == 1
    assert stack.rows_for(job["job_id"]) == loaded == again["counts"]["rows_loaded"]


def test_green_file_fails_with_clear_code_and_no_rows(stack):
    session = stack.upload_file(GREEN_2020, "green_tripdata_2020-10.parquet")
    job = stack.wait_job(session["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "green_trip_file"
    assert "lpep_pickup_datetime" in job["error"]["message"]
    assert "yellow" in job["error"]["message"]
    assert stack.rows_for(job["job_id"]) == 0


def test_put_with_a_header_other_than_the_signed_one_is_refused(stack):
    data = YELLOW_2015.read_bytes()
    session = stack.create_upload("signed.parquet", len(data)).json()
    headers = dict(session["upload"]["headers"], **{"Content-Type": "text/plain"})
    response = requests.put(session["upload"]["url"], data=data, headers=headers, timeout=30)
    assert response.status_code == 403
    assert b"SignatureDoesNotMatch" in response.content
    assert stack.job(session["job_id"])["status"] == "awaiting_upload"


def test_upload_url_is_signed_for_the_public_endpoint(stack):
    session = stack.create_upload("a.parquet", 10).json()
    assert session["upload"]["url"].startswith(f"{stack.endpoint}/{stack.bucket}/raw/")
    assert session["key"] == f"raw/{session['job_id']}/a.parquet"
    assert session["status_url"] == f"{stack.api}/jobs/{session['job_id']}"


def test_legacy_upload_and_task_status(stack):
    data = (FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet").read_bytes()
    response = requests.post(f"{stack.api}/upload",
                             files={"file": ("old_client.parquet", data)}, timeout=30)
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]

    def done():
        body = requests.get(f"{stack.api}/task-status/{task_id}", timeout=10).json()
        return body if body["status"] in ("SUCCESS", "FAILURE") else None

    status = wait_for(done, 60, what="the legacy task")
    assert status["status"] == "SUCCESS", status
    assert status["result"]["rows_loaded"] == 5
    assert stack.rows_for(status["job_id"]) == 5


def test_jobs_list_newest_first_and_filtered(stack):
    listed = requests.get(f"{stack.api}/jobs", params={"limit": 500}, timeout=30).json()
    created = [job["created_at"] for job in listed["jobs"]]
    assert created == sorted(created, reverse=True)
    failed = requests.get(f"{stack.api}/jobs", params={"status": "failed"}, timeout=30)
    assert all(job["status"] == "failed" for job in failed.json()["jobs"])


def test_ready_names_every_dependency(stack):
    body = requests.get(f"{stack.api}/ready", timeout=30).json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"postgres", "s3", "sqs", "rabbitmq"}
