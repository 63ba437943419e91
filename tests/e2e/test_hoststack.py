"""`make up`, the client, and `make down`, as a user runs them: a second
host-mode stack beside the test session's own, on free ports, which must
leave no process behind, even when honcho was killed first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from scripts.hoststack import ROOT
from tests.conftest import FIXTURES, _admin_engine
from tests.stack import free_port

pytestmark = pytest.mark.e2e


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it (honcho starts each program in a
    session of its own, so process groups would miss them)."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True,
                         check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _alive(pid: int) -> bool:
    """Running, that is: a zombie waiting for init to reap it has ended."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


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
        started = _descendants(honcho) | _descendants(localstack)
        commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text() for pid in started
                            if Path(f"/proc/{pid}/cmdline").exists())
        for program in ("serve_local.py", "infra.bridge", "celery", "localstack"):
            assert program in commands, f"{program} is not running under the stack"

        api = f"http://127.0.0.1:{api_port}"
        ok = run("scripts.client", "--api-url", api, "upload", "--quiet",
                 str(FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "succeeded" in ok.stdout and "9,859" in ok.stdout
        refused = run("scripts.client", "--api-url", api, "upload", "--quiet",
                      str(FIXTURES / "2020-10_green_sample_data.parquet"))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "green_trip_file" in refused.stdout
        # The hard case: honcho dies first, and its programs live on.
        os.kill(honcho, signal.SIGKILL)
    finally:
        down = run("scripts.hoststack", "down")
        with _admin_engine().connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": database})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
    assert down.returncode == 0, down.stdout + down.stderr
    left = sorted(pid for pid in started if _alive(pid))
    assert left == [], f"processes left behind: {left}"
