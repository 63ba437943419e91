"""`make up`, the client, and `make down`, as a user runs them: a second
host-mode stack beside the test session's own, on free ports, which must
leave no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text

from scripts.hoststack import ROOT
from tests.conftest import FIXTURES, _admin_engine
from tests.stack import free_port

pytestmark = pytest.mark.e2e


def _group_members(pgid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True,
                         text=True, check=False).stdout
    return {int(pid) for pid in out.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_client_and_down_leave_nothing_behind(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    database = f"taxi_up_{suffix}"
    api_port = free_port()
    env = {**os.environ, "TAXI_RUN_DIR": str(tmp_path / "run"),
           "API_PORT": str(api_port), "LOCALSTACK_PORT": str(free_port()),
           "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
           "S3_BUCKET": f"taxi-up-{suffix}", "INGEST_QUEUE_NAME": f"taxi-up-{suffix}",
           "INGEST_DLQ_NAME": f"taxi-up-dlq-{suffix}", "CELERY_QUEUE": f"taxi-up-{suffix}"}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("S3_PUBLIC_ENDPOINT_URL", None)

    def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, text=True,
                              capture_output=True, timeout=timeout, check=False)

    try:
        up = run("scripts.hoststack", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        run_dir = tmp_path / "run"
        honcho = int((run_dir / "honcho.pid").read_text())
        localstack = int((run_dir / "localstack.pid").read_text())
        started = _group_members(honcho) | _group_members(localstack)
        assert len(started) >= 4  # honcho, api, bridge, worker (and its pool), localstack

        api = f"http://127.0.0.1:{api_port}"
        ok = run("scripts.client", "--api-url", api, "upload", "--quiet",
                 str(FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "succeeded" in ok.stdout and "9,859" in ok.stdout
        refused = run("scripts.client", "--api-url", api, "upload", "--quiet",
                      str(FIXTURES / "2020-10_green_sample_data.parquet"))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "green_trip_file" in refused.stdout
    finally:
        down = run("scripts.hoststack", "down")
        with _admin_engine().connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": database})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
    assert down.returncode == 0, down.stdout + down.stderr
    left = sorted(pid for pid in started if _alive(pid))
    assert left == [], f"processes left behind: {left}"
