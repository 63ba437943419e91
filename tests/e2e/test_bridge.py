"""The bridge's choices, seen from outside: what it ignores, and the Lambda
handler that does on AWS what the bridge process does here (F3, F5)."""

from __future__ import annotations

import json

import pytest
import requests
from chalice.test import Client

from infra.settings import get_settings
from tests.conftest import FIXTURES
from tests.stack import s3_event, wait_for

pytestmark = pytest.mark.e2e

SMALL = FIXTURES / "yellow_2015-01.parquet"


def _jobs_for(stack, key: str) -> list[dict]:
    listed = requests.get(f"{stack.api}/jobs", params={"limit": 500}, timeout=30).json()
    return [job for job in listed["jobs"] if job["key"] == key]


def _queue_empty(stack) -> bool:
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                  "ApproximateNumberOfMessagesNotVisible"])
    values = attributes["Attributes"]
    return values["ApproximateNumberOfMessages"] == "0" == \
        values["ApproximateNumberOfMessagesNotVisible"]


def test_objects_outside_the_raw_prefix_start_nothing(stack):
    key = "elsewhere/yellow_tripdata_2025-01.parquet"
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=SMALL.read_bytes())
    # The notification filter keeps it out of SQS; an event that says so
    # anyway (another bucket's, or a hand-made one) is dropped by the bridge.
    stack.send_raw_event(s3_event(stack.bucket, key, "abc", 10))
    stack.send_raw_event(s3_event("someone-elses-bucket", "raw/x.parquet", "abc", 10))
    stack.send_raw_event(s3_event(stack.bucket, "raw/notes.txt", "abc", 10))
    wait_for(lambda: _queue_empty(stack), 30, what="the bridge to consume the events")
    assert _jobs_for(stack, key) == []
    assert _jobs_for(stack, "raw/x.parquet") == []
    assert _jobs_for(stack, "raw/notes.txt") == []


def test_a_test_event_is_deleted_and_the_events_beside_it_flow(stack):
    stack.send_raw_event({"Service": "Amazon S3", "Event": "s3:TestEvent",
                          "Bucket": stack.bucket})
    job = stack.wait_job(stack.upload_file(SMALL, "after_test_event.parquet")["job_id"])
    assert job["status"] == "succeeded"
    wait_for(lambda: _queue_empty(stack), 30, what="the test event to be deleted")


def test_the_lambda_handler_bridges_like_the_bridge_process(stack, monkeypatch):
    key = "raw/lambda/yellow_2015-01.parquet"
    put = stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=SMALL.read_bytes())
    # The bridge process would pick this object's event up too; take it out
    # of the queue so only the Lambda handler below can publish it.
    stack.processes["bridge"].kill()
    try:
        wait_for(lambda: stack.drain(stack.queue_url), 30, what="the object's event")
        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        import app as api

        event = s3_event(stack.bucket, key, put["ETag"].strip('"'), SMALL.stat().st_size)
        with Client(api.app) as client:
            client.lambda_.invoke("on_ingest_event", client.events.generate_sqs_event(
                message_bodies=[json.dumps(event)], queue_name=stack.queue))
    finally:
        get_settings.cache_clear()
        stack.restart("bridge")
    job = wait_for(lambda: next((j for j in _jobs_for(stack, key)
                                 if j["status"] == "succeeded"), None), 60,
                   what="the job the Lambda handler published")
    assert job["source"] == "event" and stack.rows_for(job["job_id"]) == 100


def test_ready_is_503_and_names_what_is_down(stack):
    api = stack.extra_api("api-broken-deps", {"BROKER_URL": "amqp://guest:guest@127.0.0.1:9//",
                                              "S3_BUCKET": "no-such-bucket"})
    answer = requests.get(f"{api}/ready", timeout=60)
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["rabbitmq"]["ok"] is False and checks["s3"]["ok"] is False
    assert checks["postgres"]["ok"] is True and checks["sqs"]["ok"] is True
    assert "amqp://" not in answer.text and "guest" not in answer.text


def test_a_database_outage_is_a_503_that_says_what_to_do(stack):
    api = stack.extra_api("api-no-db", {
        "DATABASE_URL": "postgresql://postgres:s3cret@127.0.0.1:9/taxi"})
    answer = requests.get(f"{api}/jobs", timeout=60)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert answer.headers["Retry-After"] == "5"
    assert "s3cret" not in answer.text and "127.0.0.1:9" not in answer.text
