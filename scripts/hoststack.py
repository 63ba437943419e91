"""The whole stack on one machine without Docker ("host mode").

    python -m scripts.hoststack up      # LocalStack, migrations, then honcho
    python -m scripts.hoststack down    # stop all of it
    python -m scripts.hoststack status

It uses the machine's Postgres and RabbitMQ, starts LocalStack as a host
process (``scripts.localstack_host``) whose ready hook provisions the bucket
and queues, runs the migrations once, and then runs the processes of ``scripts/Procfile``
(API, bridge, worker) under honcho. State, logs and process ids live in
``.run/``; ``down`` stops exactly the processes ``up`` started.

``stack_env`` and ``procfile`` are shared with the end-to-end tests, which
start the same commands with their own ports, bucket, queues and database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from scripts import localstack_host

ROOT = Path(__file__).resolve().parents[1]
#: Logs, process ids and LocalStack's state; TAXI_RUN_DIR moves them (the
#: tests run a second stack beside a developer's this way).
RUN_DIR = Path(os.environ.get("TAXI_RUN_DIR", ROOT / ".run"))
PROCFILE = ROOT / "scripts" / "Procfile"
VENV_BIN = ROOT / ".venv" / "bin"

DEFAULTS = {
    "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "API_PORT": "8000",
    "LOCALSTACK_PORT": "4566",
}


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """Process name -> shell command, as honcho reads them."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def stack_env(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every process of the stack runs with: the caller's
    environment, the host-mode defaults where it sets nothing, then
    ``overrides``."""
    env = dict(os.environ)
    env.update(overrides or {})
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    port = env["LOCALSTACK_PORT"]
    if port != DEFAULTS["LOCALSTACK_PORT"]:
        # A second stack on this machine (other ports) gets its own database
        # and Celery queue unless told otherwise: sharing RabbitMQ's queue, two
        # stacks' workers would take each other's tasks.
        env.setdefault("DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/taxi_{port}")
        env.setdefault("CELERY_QUEUE", f"taxi-ingest-{port}")
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/taxi")
    localstack = f"http://127.0.0.1:{env['LOCALSTACK_PORT']}"
    env.setdefault("AWS_ENDPOINT_URL", localstack)
    env.setdefault("S3_PUBLIC_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    env["TAXI_ROOT"] = str(ROOT)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


#: What the LocalStack ready hook needs to know to provision for this stack.
RESOURCE_VARS = ("AWS_REGION", "S3_BUCKET", "RAW_PREFIX", "INGEST_QUEUE_NAME",
                 "INGEST_DLQ_NAME", "INGEST_MAX_RECEIVE_COUNT",
                 "INGEST_VISIBILITY_TIMEOUT_SECONDS")


def resource_env(env: dict[str, str]) -> dict[str, str]:
    return {name: env[name] for name in RESOURCE_VARS if name in env}


def ensure_database(database_url: str) -> None:
    """Create the database the URL names if it does not exist yet."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database_url.replace("postgresql://", "postgresql+pg8000://", 1))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": url.database}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def run_step(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, cwd=ROOT, check=False)
    if result.returncode:
        raise SystemExit(f"step failed ({result.returncode}): {' '.join(args)}")


def wait_http(url: str, timeout: float, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status in ok:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s ({last})")


STACK_MARK = "TAXI_STACK"


def _marked_processes(run_dir: Path) -> list[int]:
    """Processes whose environment says they belong to the stack of ``run_dir``."""
    mark = f"{STACK_MARK}={run_dir.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _terminate(pids: list[int], timeout: float = 10.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_pid_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    """Running: a zombie waiting to be reaped has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def up() -> int:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # Every process of this stack carries the mark, so `down` finds them all
    # even if honcho itself died first.
    env = stack_env({STACK_MARK: str(RUN_DIR.resolve())})
    honcho_pid = RUN_DIR / "honcho.pid"
    if honcho_pid.exists() and _pid_alive(int(honcho_pid.read_text())):
        print("the stack is already up ('make down' stops it)")
        return 0
    ls_port = int(env["LOCALSTACK_PORT"])
    ls_pid = RUN_DIR / "localstack.pid"
    if not (ls_pid.exists() and _pid_alive(int(ls_pid.read_text()))):
        # Its ready hook provisions the bucket and queues the stack is told of.
        process = localstack_host.start(ls_port, RUN_DIR / "localstack",
                                        log_path=RUN_DIR / "localstack.log",
                                        extra_env=resource_env(env))
        ls_pid.write_text(str(process.pid))
        print(f"LocalStack {localstack_host.LOCALSTACK_VERSION} up on 127.0.0.1:{ls_port}")
    ensure_database(env["DATABASE_URL"])
    python = str(VENV_BIN / "python")
    run_step([python, "-m", "infra.migrate"], env)
    log = open(RUN_DIR / "stack.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [str(VENV_BIN / "honcho"), "-f", str(PROCFILE), "-d", str(ROOT), "start"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    honcho_pid.write_text(str(process.pid))
    api = f"http://127.0.0.1:{env['API_PORT']}"
    try:
        wait_http(f"{api}/ready", timeout=60)
    except TimeoutError as exc:
        print(f"{exc}; see {RUN_DIR / 'stack.log'}", file=sys.stderr)
        down()
        return 1
    print(f"stack up: API {api}, LocalStack 127.0.0.1:{ls_port}; logs in {RUN_DIR}/")
    return 0


def down() -> int:
    honcho_pid = RUN_DIR / "honcho.pid"
    if honcho_pid.exists():
        pid = int(honcho_pid.read_text())
        # SIGTERM to honcho's process group (honcho passes it on), then SIGKILL.
        localstack_host.stop(pid, timeout=15.0)
        honcho_pid.unlink()
        print("API, bridge and worker stopped")
    stragglers = _marked_processes(RUN_DIR)
    if stragglers:
        # Left by a honcho that died before it could stop them.
        _terminate(stragglers)
        print(f"stopped {len(stragglers)} process(es) a dead honcho left behind")
    ls_pid = RUN_DIR / "localstack.pid"
    if ls_pid.exists():
        localstack_host.stop(int(ls_pid.read_text()))
        ls_pid.unlink()
        print("LocalStack stopped")
    return 0


def status() -> int:
    running = 0
    for name in ("honcho", "localstack"):
        pid_file = RUN_DIR / f"{name}.pid"
        alive = pid_file.exists() and _pid_alive(int(pid_file.read_text()))
        running += alive
        print(f"{name}: {'running' if alive else 'stopped'}")
    return 0 if running == 2 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the stack on this machine.")
    parser.add_argument("action", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "status": status}[args.action]()


if __name__ == "__main__":
    sys.exit(main())
