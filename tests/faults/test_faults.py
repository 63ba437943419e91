"""Crash things for real and check that every file ends loaded once or failed
with nothing loaded (issue: reliability). Processes are killed and
restarted by the test; the machine's Postgres and RabbitMQ are restarted
too, and are always left running."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests
from sqlalchemy import text

from scripts.hoststack import ROOT
from tests.conftest import FIXTURES
from tests.stack import s3_event, wait_for

pytestmark = pytest.mark.faults

SAMPLE = FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet"
SMALL = FIXTURES / "yellow_2015-01.parquet"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """A million real rows: the January sample tiled, each copy shifted by
    some seconds so that the copies are not duplicates of each other."""
    table = pq.read_table(SAMPLE)
    tiles = []
    for i in range(100):
        shift = pa.scalar(dt.timedelta(seconds=i * 7), pa.duration("ns"))
        tile = table
        for name in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
            index = tile.column_names.index(name)
            tile = tile.set_column(index, name, pc.add(tile.column(name), shift))
        tiles.append(tile)
    path = tmp_path_factory.mktemp("big") / "yellow_tripdata_2025-01.parquet"
    pq.write_table(pa.concat_tables(tiles), path, row_group_size=250_000)
    return path


def _copy_in_progress(stack) -> bool:
    with stack.engine.connect() as conn:
        copied = conn.execute(text(
            "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy p "
            "JOIN pg_database d ON d.oid = p.datid WHERE d.datname = current_database()"
        )).scalar_one()
    return copied > 50_000


def _checked(stack, fault_report, job: dict) -> None:
    assert fault_report.check(stack, job) == 0, job


def test_worker_killed_mid_copy_loads_once_after_restart(stack, fault_report, big_file):
    session = stack.upload_file(big_file)
    wait_for(lambda: _copy_in_progress(stack), 60, interval=0.05, what="the COPY to start")
    stack.processes["worker"].kill(signal.SIGKILL)
    fault_report.injected("worker SIGKILLed during COPY")
    assert stack.job(session["job_id"])["status"] == "running"
    assert stack.rows_for(session["job_id"]) == 0  # the cut COPY was rolled back
    stack.restart("worker")
    job = stack.wait_job(session["job_id"], timeout=180)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert job["counts"]["rows_in"] == 1_000_000
    _checked(stack, fault_report, job)


def test_the_same_event_three_times_and_the_same_object_twice(stack, fault_report):
    session = stack.upload_file(SMALL, "thrice.parquet")
    job = stack.wait_job(session["job_id"])
    event = s3_event(stack.bucket, job["key"], job["etag"], job["size_bytes"])
    for _ in range(3):
        stack.send_raw_event(event)
    fault_report.injected("same S3 event delivered three more times")
    wait_for(lambda: stack.job(job["job_id"])["duplicates_skipped"] >= 3, 60,
             what="the duplicates to be skipped")
    # The same bytes uploaded again: a new event, the same etag, nothing to do.
    requests.put(session["upload"]["url"], data=SMALL.read_bytes(),
                 headers=session["upload"]["headers"], timeout=30).raise_for_status()
    fault_report.injected("same object uploaded twice")
    wait_for(lambda: stack.job(job["job_id"])["duplicates_skipped"] >= 4, 60,
             what="the re-upload to be skipped")
    again = stack.job(job["job_id"])
    assert again["attempts"] == 1 and stack.rows_for(job["job_id"]) == 100
    _checked(stack, fault_report, again)


def test_a_replaced_object_replaces_its_rows(stack, fault_report):
    key = "raw/direct/replaced.parquet"
    s3 = stack.s3()
    s3.put_object(Bucket=stack.bucket, Key=key, Body=SMALL.read_bytes())
    first = wait_for(lambda: _finished_job(stack, key), 60, what="the first load")
    assert stack.rows_for(first["job_id"]) == 100
    s3.put_object(Bucket=stack.bucket, Key=key,
                  Body=(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet").read_bytes())
    fault_report.injected("object overwritten with another file")
    second = wait_for(lambda: (j := _finished_job(stack, key)) and j["attempts"] == 2 and j,
                      60, what="the second load")
    assert second["job_id"] == first["job_id"]
    assert second["counts"]["rows_loaded"] == 5 == stack.rows_for(second["job_id"])
    _checked(stack, fault_report, second)


def test_bridge_killed_between_publish_and_delete(stack, fault_report):
    stack.processes["bridge"].kill(signal.SIGKILL)
    try:
        session = stack.upload_file(SMALL, "bridge_crash.parquet")
        crash = subprocess.run([sys.executable, "-m", "tests.faults.bridge_crash_once"],
                               env=stack.env(), cwd=ROOT, capture_output=True, timeout=90,
                               check=False)
        assert crash.returncode == -signal.SIGKILL, crash.stdout + crash.stderr
        fault_report.injected("bridge SIGKILLed after publish, before delete")
        first = stack.wait_job(session["job_id"])
        assert first["status"] == "succeeded"
    finally:
        stack.restart("bridge")
    # The undeleted message comes back after its visibility timeout; the
    # bridge publishes it again and the worker skips the loaded version.
    wait_for(lambda: stack.job(session["job_id"])["duplicates_skipped"] >= 1, 90,
             what="the redelivered event to be skipped")
    job = stack.job(session["job_id"])
    assert job["attempts"] == 1 and stack.rows_for(job["job_id"]) == 100
    _checked(stack, fault_report, job)


def test_a_message_that_is_not_an_s3_event_ends_in_the_dead_letter_queue(stack, fault_report):
    stack.send_raw_event("this is not an S3 event")
    fault_report.injected("poison message in the ingest queue")
    session = stack.upload_file(SMALL, "past_the_poison.parquet")
    job = stack.wait_job(session["job_id"])
    assert job["status"] == "succeeded"
    _checked(stack, fault_report, job)
    dead = wait_for(lambda: stack.drain(stack.dlq_url), 90, interval=1,
                    what="the poison message in the dead-letter queue")
    assert [m["Body"] for m in dead] == ["this is not an S3 event"]


def test_soft_time_limit_fails_the_job_and_rolls_back(stack, fault_report, big_file):
    stack.processes["worker"].kill(signal.SIGTERM)
    stack.start_process("worker", alias="worker-short-limit",
                        env={"TASK_SOFT_TIME_LIMIT_SECONDS": "1",
                             "TASK_TIME_LIMIT_SECONDS": "20"})
    try:
        session = stack.upload_file(big_file, "yellow_tripdata_2025-01.parquet")
        fault_report.injected("task past its soft time limit")
        job = stack.wait_job(session["job_id"], timeout=120)
    finally:
        stack.processes.pop("worker-short-limit").kill(signal.SIGTERM)
        stack.restart("worker")
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "time_limit_exceeded"
    assert "TASK_SOFT_TIME_LIMIT_SECONDS" in job["error"]["message"]
    assert stack.rows_for(job["job_id"]) == 0
    _checked(stack, fault_report, job)


# -- the machine's services ----------------------------------------------------

def _pg(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action,
                    *(["-m", "fast"] if action in ("stop", "restart") else [])],
                   check=True, capture_output=True, timeout=120)


def _pg_up() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False,
                          timeout=10).returncode == 0


@pytest.fixture
def postgres_restored():
    yield
    if not _pg_up():
        _pg("start")
    wait_for(_pg_up, 60, what="Postgres to accept connections again")


def _rabbit(action: str) -> None:
    subprocess.run(["rabbitmqctl", action], check=True, capture_output=True, timeout=120)


def _rabbit_up() -> bool:
    try:
        import socket

        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbitmq_restored():
    yield
    if not _rabbit_up():
        _rabbit("start_app")
    wait_for(_rabbit_up, 60, what="RabbitMQ to accept connections again")


def test_postgres_restart_during_a_load_is_retried(stack, fault_report, big_file,
                                                   postgres_restored):
    session = stack.upload_file(big_file, "yellow_tripdata_2025-01.parquet")
    wait_for(lambda: _copy_in_progress(stack), 60, interval=0.05, what="the COPY to start")
    worker_pid = stack.processes["worker"].popen.pid
    _pg("restart")
    fault_report.injected("Postgres restarted during COPY")
    wait_for(_pg_up, 60, what="Postgres to come back")
    job = stack.wait_job(session["job_id"], timeout=240)
    assert job["status"] == "succeeded", job
    assert job["attempts"] >= 2
    assert stack.processes["worker"].alive()
    assert stack.processes["worker"].popen.pid == worker_pid
    _checked(stack, fault_report, job)


def test_rabbitmq_down_while_uploads_arrive(stack, fault_report, rabbitmq_restored):
    _rabbit("stop_app")
    fault_report.injected("RabbitMQ stopped while uploads arrive")
    sessions = [stack.upload_file(SMALL, f"while_rabbit_down_{i}.parquet") for i in range(3)]
    time.sleep(8)  # the bridge receives the events and cannot publish them
    for session in sessions:
        assert stack.job(session["job_id"])["status"] in ("queued", "awaiting_upload")
    _rabbit("start_app")
    wait_for(_rabbit_up, 60, what="RabbitMQ to come back")
    for session in sessions:
        job = stack.wait_job(session["job_id"], timeout=180)
        assert job["status"] == "succeeded", job
        assert stack.rows_for(job["job_id"]) == 100
        _checked(stack, fault_report, job)
    assert stack.drain(stack.dlq_url) == []  # no good event was dead-lettered


def _finished_job(stack, key: str) -> dict | None:
    listed = requests.get(f"{stack.api}/jobs", params={"limit": 500}, timeout=30).json()
    for job in listed["jobs"]:
        if job["key"] == key and job["status"] in ("succeeded", "failed"):
            return job
    return None
