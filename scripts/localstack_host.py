"""LocalStack as a plain host process, for machines without a Docker engine.

    python -m scripts.localstack_host start|stop|status [--port 4566]

It runs from its own virtual environment (``.localstack/venv``, made by
``make setup``) because it pins boto3 exactly. The environment below is the
one ``shared`` notes measured: loopback only, no outbound calls, signature
checks on, state under ``.localstack/`` instead of the home directory.
The ready hooks are the files of ``localstack-init/``, linked into
``$FILESYSTEM_ROOT/etc/localstack/init/ready.d``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".localstack" / "venv" / "bin" / "python"
INIT_DIR = ROOT / "localstack-init"
#: The version compose pins too; tests/unit/test_compose.py keeps them equal.
LOCALSTACK_VERSION = "4.13.1"

_LAUNCHER = (
    "import localstack.utils.aws.aws_stack as s; s.CACHE_S3_HOSTNAME_DNS_STATUS = False\n"
    "from localstack.runtime.main import main; main()\n"
)


def localstack_env(port: int, state_dir: Path, extra: dict[str, str] | None = None) -> dict:
    closed = "http://127.0.0.1:9"
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LOCALSTACK_", "PYTHON"))
    }
    env.update({
        "OVERRIDE_IN_DOCKER": "0",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER": "hypercorn",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SQS_ENDPOINT_STRATEGY": "off",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "API_ENDPOINT": closed,
        "ANALYTICS_API": closed,
        "SERVICES": "s3,sqs",
        "EAGER_SERVICE_LOADING": "1",
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        "FILESYSTEM_ROOT": str(state_dir / "fs"),
        "XDG_CACHE_HOME": str(state_dir / "cache"),
        "CONFIG_DIR": str(state_dir / "config"),
        "TMPDIR": str(state_dir / "tmp"),
    })
    env.update(hook_env(port))
    env.update(extra or {})
    return env


def hook_env(port: int) -> dict[str, str]:
    """What the ready hook (localstack-init/provision.py) reads besides the
    resource names, which pass through from the caller's environment or
    ``extra_env``. The caller's AWS_* variables were dropped on purpose: real
    keys or a real endpoint never reach LocalStack. Only the region is kept,
    because SQS queues live in one region and the app must find them there."""
    env = {
        "TAXI_INFRA_DIR": str(ROOT / "infra"),
        "TAXI_PROVISION_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    if os.environ.get("AWS_REGION"):
        env["AWS_REGION"] = os.environ["AWS_REGION"]
    return env


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(port: int, state_dir: Path, *, log_path: Path | None = None,
          hooks: bool = True, extra_env: dict[str, str] | None = None,
          timeout: float = 60.0) -> subprocess.Popen:
    """Start LocalStack and wait until its ready hooks have run."""
    if not VENV_PYTHON.exists():
        raise RuntimeError(
            f"{VENV_PYTHON} is missing: run 'make setup' to create LocalStack's venv")
    if port_in_use(port):
        raise RuntimeError(
            f"port {port} is taken: a second LocalStack would print 'Ready.' without "
            "binding. Stop whatever listens there ('make down'), or run a second stack on "
            "other ports: LOCALSTACK_PORT=4666 API_PORT=8100 make up.")
    for sub in ("fs", "cache", "config", "tmp"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    ready_d = state_dir / "fs" / "etc" / "localstack" / "init" / "ready.d"
    if ready_d.exists():
        shutil.rmtree(ready_d)
    ready_d.mkdir(parents=True)
    if hooks:
        for hook in sorted(INIT_DIR.glob("*.py")):
            shutil.copy(hook, ready_d / hook.name)
    log = open(log_path or state_dir / "localstack.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [str(VENV_PYTHON), "-c", _LAUNCHER],
        env=localstack_env(port, state_dir, extra_env),
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, cwd=state_dir,
    )
    log.close()
    try:
        wait_ready(port, timeout, process)
    except BaseException:
        stop(process.pid)
        raise
    return process


def wait_ready(port: int, timeout: float, process: subprocess.Popen | None = None) -> dict:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_localstack/init/ready"
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"LocalStack exited with code {process.returncode}; "
                               "see its log under .localstack/")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                state = json.load(response)
            if state.get("completed"):
                failed = [s for s in state.get("scripts", []) if s.get("state") == "ERROR"]
                if failed:
                    names = ", ".join(s.get("name", "?") for s in failed)
                    raise RuntimeError(f"LocalStack ready hook(s) failed: {names}")
                return state
            last = json.dumps(state)[:200]
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"LocalStack on port {port} not ready after {timeout:.0f}s ({last})")


def stop(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group ``pid`` leads (LocalStack's, or any other
    started in a session of its own); SIGKILL what lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".localstack" / "state")
    args = parser.parse_args(argv)
    pid_file = args.state_dir / "localstack.pid"
    if args.action == "start":
        process = start(args.port, args.state_dir)
        pid_file.write_text(str(process.pid))
        print(f"LocalStack {LOCALSTACK_VERSION} ready on 127.0.0.1:{args.port} "
              f"(pid {process.pid})")
    elif args.action == "stop":
        if pid_file.exists():
            stop(int(pid_file.read_text()))
            pid_file.unlink()
            print("LocalStack stopped")
    else:
        up = port_in_use(args.port)
        print(f"LocalStack on 127.0.0.1:{args.port}: {'up' if up else 'down'}")
        return 0 if up else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
