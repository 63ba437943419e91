"""The LocalStack ready hook (localstack-init/provision.py) provisions what the
pipeline needs, run the way host mode runs it: LocalStack as a host process
on a free port, a fresh state directory, and resource names of this test's
own passed through ``extra_env``. Compose mounts the same hook file.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
import uuid

import boto3
import pytest
import yaml

from scripts import localstack_host

pytestmark = pytest.mark.integration

MAX_RECEIVE_COUNT = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not localstack_host.VENV_PYTHON.exists():
        reason = (f"{localstack_host.VENV_PYTHON} is missing: LocalStack's own venv is "
                  "needed to run the hook ('make setup' creates it)")
        print(reason)
        pytest.skip(reason)
    suffix = uuid.uuid4().hex[:8]
    names = {
        "S3_BUCKET": f"init-test-{suffix}",
        "RAW_PREFIX": f"incoming-{suffix}/",
        "INGEST_QUEUE_NAME": f"init-test-{suffix}",
        "INGEST_DLQ_NAME": f"init-test-{suffix}-dlq",
        "INGEST_MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        "AWS_REGION": "us-east-1",
    }
    port = _free_port()
    process = localstack_host.start(port, tmp_path_factory.mktemp("localstack"),
                                    extra_env=names, timeout=30)
    try:
        yield port, names
    finally:
        localstack_host.stop(process.pid)


@pytest.fixture(scope="module")
def clients(stack):
    port, names = stack
    kwargs = {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": names["AWS_REGION"],
              "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return boto3.client("s3", **kwargs), boto3.client("sqs", **kwargs)


def test_the_hook_ran_successfully(stack):
    port, _ = stack
    url = f"http://127.0.0.1:{port}/_localstack/init/ready"
    with urllib.request.urlopen(url, timeout=5) as response:
        state = json.load(response)
    assert state["completed"] is True
    assert {s["name"]: s["state"] for s in state["scripts"]} == {"provision.py": "SUCCESSFUL"}


def test_compose_healthcheck_accepts_the_ready_state(stack):
    # The same check compose runs in the container, against this instance.
    port, _ = stack
    compose = yaml.safe_load((localstack_host.ROOT / "docker-compose.yml").read_text())
    check = compose["services"]["localstack"]["healthcheck"]["test"][-1]
    result = subprocess.run(
        [str(localstack_host.VENV_PYTHON), "-c", check.replace(":4566/", f":{port}/")],
        capture_output=True, text=True, timeout=15, check=False)
    assert result.returncode == 0, result.stderr


def test_bucket_has_cors_for_browser_uploads(stack, clients):
    _, names = stack
    s3, _ = clients
    rules = s3.get_bucket_cors(Bucket=names["S3_BUCKET"])["CORSRules"]
    assert {"PUT", "POST"} <= set(rules[0]["AllowedMethods"])
    assert "ETag" in rules[0]["ExposeHeaders"]


def test_queue_redrives_to_the_dead_letter_queue(stack, clients):
    _, names = stack
    _, sqs = clients
    queue_url = sqs.get_queue_url(QueueName=names["INGEST_QUEUE_NAME"])["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=names["INGEST_DLQ_NAME"])["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT


def test_raw_trip_files_notify_the_queue(stack, clients):
    _, names = stack
    s3, sqs = clients
    queue_url = sqs.get_queue_url(QueueName=names["INGEST_QUEUE_NAME"])["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    configs = s3.get_bucket_notification_configuration(Bucket=names["S3_BUCKET"])[
        "QueueConfigurations"]
    suffixes = set()
    for config in configs:
        assert config["QueueArn"] == queue_arn
        assert config["Events"] == ["s3:ObjectCreated:*"]
        rules = {rule["Name"].lower(): rule["Value"]
                 for rule in config["Filter"]["Key"]["FilterRules"]}
        assert rules["prefix"] == names["RAW_PREFIX"]
        suffixes.add(rules["suffix"])
    assert suffixes == {".parquet", ".csv", ".csv.gz"}
