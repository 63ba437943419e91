"""A private host-mode stack for one test session.

Its own LocalStack (free port, fresh state), its own database, bucket,
queues and Celery queue, and the processes of ``scripts/Procfile`` started
one by one, so a test can kill and restart any of them. Everything binds to
127.0.0.1. Nothing is shared with a stack ``make up`` may be running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import requests
from botocore.config import Config
from sqlalchemy import Engine, text

from infra.provision import Resources
from scripts import localstack_host
from scripts.hoststack import ROOT, procfile, resource_env, stack_env, wait_http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    workdir: Path
    database_url: str
    engine: Engine
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.localstack_port = free_port()
        self.api_port = free_port()
        self.bucket = f"taxi-test-{self.suffix}"
        self.queue = f"taxi-test-events-{self.suffix}"
        self.dlq = f"taxi-test-events-dlq-{self.suffix}"
        self.celery_queue = f"taxi-test-{self.suffix}"
        self.localstack: subprocess.Popen | None = None
        self.queue_url = self.dlq_url = ""

    # -- configuration -----------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.localstack_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        return stack_env({
            "DATABASE_URL": self.database_url.replace("+pg8000", ""),
            "AWS_ENDPOINT_URL": self.endpoint,
            "S3_PUBLIC_ENDPOINT_URL": self.endpoint,
            "S3_BUCKET": self.bucket,
            "INGEST_QUEUE_NAME": self.queue,
            "INGEST_DLQ_NAME": self.dlq,
            "INGEST_MAX_RECEIVE_COUNT": "3",
            "INGEST_VISIBILITY_TIMEOUT_SECONDS": "10",
            "CELERY_QUEUE": self.celery_queue,
            "API_PORT": str(self.api_port),
            "TASK_MAX_RETRIES": "8",
            **self.extra_env,
        })

    def resources(self) -> Resources:
        return Resources.from_env(self.env())

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        state = self.workdir / "localstack"
        # The ready hook provisions, exactly as in `make up` and compose.
        self.localstack = localstack_host.start(
            self.localstack_port, state, log_path=self.workdir / "localstack.log",
            extra_env=resource_env(self.env()))
        sqs = self.sqs()
        self.queue_url = sqs.get_queue_url(QueueName=self.queue)["QueueUrl"]
        self.dlq_url = sqs.get_queue_url(QueueName=self.dlq)["QueueUrl"]
        for name in ("api", "bridge", "worker"):
            self.start_process(name)
        wait_http(f"{self.api}/ready", timeout=60)
        self._wait_log(self.processes["worker"], 0, b" ready.")

    def start_process(self, name: str, *, alias: str | None = None,
                      env: dict[str, str] | None = None) -> Process:
        """Start one Procfile entry; ``alias`` runs a second copy of it (with
        ``env`` on top of the stack's) beside the first."""
        command = procfile()[name]
        label = alias or name
        log = self.workdir / f"{label}.log"
        handle = open(log, "ab")  # noqa: SIM115 - owned by the child
        popen = subprocess.Popen(["/bin/sh", "-c", command], env={**self.env(), **(env or {})},
                                 cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        handle.close()
        self.processes[label] = Process(label, popen, log)
        return self.processes[label]

    def extra_api(self, alias: str, env: dict[str, str]) -> str:
        """A second API process with other settings; returns its base URL."""
        port = free_port()
        self.start_process("api", alias=alias, env={**env, "API_PORT": str(port)})
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", timeout=60)
        return url

    def restart(self, name: str) -> Process:
        if name in self.processes:
            self.processes[name].kill()
        if name == "worker":
            log = self.processes["worker"].log
            offset = log.stat().st_size if log.exists() else 0
            process = self.start_process(name)
            self._wait_log(process, offset, b" ready.")
            return process
        return self.start_process(name)

    def _wait_log(self, process: Process, offset: int, needle: bytes,
                  timeout: float = 60) -> None:
        def seen() -> bool:
            if not process.log.exists():
                return False
            with process.log.open("rb") as handle:
                handle.seek(offset)
                return needle in handle.read()

        wait_for(seen, timeout, what=f"{needle!r} in {process.name}'s log")

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill(signal.SIGTERM)
        if self.localstack is not None:
            localstack_host.stop(self.localstack.pid)
        self._delete_celery_queue()

    def _delete_celery_queue(self) -> None:
        from kombu import Connection

        try:
            with Connection(self.env()["BROKER_URL"], connect_timeout=3) as conn:
                channel = conn.channel()
                channel.queue_delete(self.celery_queue)
                channel.exchange_delete(self.celery_queue)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide a result
            print(f"could not delete RabbitMQ queue {self.celery_queue}: {exc}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes.values())

    # -- clients -----------------------------------------------------------

    def s3(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(signature_version="s3v4",
                                          s3={"addressing_style": "path"}))

    def sqs(self):
        return boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def drain(self, queue_url: str) -> list[dict]:
        sqs = self.sqs()
        got = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", [])
            if not messages:
                return got
            for message in messages:
                got.append(message)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # -- the product, as a client uses it -----------------------------------

    def create_upload(self, filename: str, size: int, **extra) -> requests.Response:
        return requests.post(f"{self.api}/uploads",
                             json={"filename": filename, "size": size, **extra}, timeout=30)

    def upload_file(self, path: Path, filename: str | None = None) -> dict:
        data = path.read_bytes()
        return self.upload_bytes(data, filename or path.name)

    def upload_bytes(self, data: bytes, filename: str) -> dict:
        response = self.create_upload(filename, len(data))
        assert response.status_code == 201, response.text
        session = response.json()
        put = requests.put(session["upload"]["url"], data=data,
                           headers=session["upload"]["headers"], timeout=60)
        assert put.status_code == 200, put.text
        return session

    def job(self, job_id: str) -> dict:
        response = requests.get(f"{self.api}/jobs/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_job(self, job_id: str, timeout: float = 90,
                 statuses=("succeeded", "failed")) -> dict:
        try:
            return wait_for(lambda: (j := self.job(job_id))["status"] in statuses and j,
                            timeout, interval=0.25, what=f"job {job_id} to reach {statuses}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def rows_for(self, job_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM yellow_taxi_trips WHERE job_id = :j"),
                                {"j": job_id}).scalar_one()

    def send_raw_event(self, body: dict | str) -> None:
        self.sqs().send_message(QueueUrl=self.queue_url,
                                MessageBody=body if isinstance(body, str) else json.dumps(body))


@dataclass
class FaultReport:
    """What the fault tier did: faults injected, jobs checked, rows lost."""

    faults: int = 0
    jobs: int = 0
    rows_lost: int = 0
    details: list[str] = field(default_factory=list)

    def injected(self, what: str) -> None:
        self.faults += 1
        self.details.append(what)

    def check(self, stack: Stack, job: dict) -> int:
        """Count a finished job; return the rows it lost or doubled: rows the
        account does not explain, and any difference between the rows the
        job reports and the rows in the table."""
        self.jobs += 1
        counts = job["counts"]
        in_table = stack.rows_for(job["job_id"])
        if job["status"] == "succeeded":
            unexplained = counts["rows_in"] - counts["rows_loaded"] - sum(
                counts["rejected_by_reason"].values())
            lost = abs(unexplained) + abs(in_table - counts["rows_loaded"])
        else:
            lost = in_table  # a failed job must leave no row
        self.rows_lost += lost
        return lost

    def line(self) -> str:
        return (f"faults injected: {self.faults}, jobs checked: {self.jobs}, "
                f"rows lost: {self.rows_lost}")


def s3_event(bucket: str, key: str, etag: str, size: int) -> dict:
    """An ObjectCreated notification as S3 sends it (key percent-encoded)."""
    from urllib.parse import quote

    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket},
               "object": {"key": quote(key), "size": size, "eTag": etag}},
    }]}
