"""Command-line client of the ingest API.

    python -m scripts.client upload yellow_tripdata_2025-01.parquet
    python -m scripts.client status <job_id>
    python -m scripts.client jobs [--status failed]
    python -m scripts.client analyze dashboard.png --out report.html

``upload`` asks the API for a presigned URL, sends the file straight to S3
with a progress bar (sending exactly the headers the URL was signed with),
waits for the job, prints its summary, and exits 1 when the job failed, 2
when the API refused the upload, 3 when waiting timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import requests
from tqdm import tqdm

DEFAULT_API = os.environ.get("TAXI_API_URL", "http://127.0.0.1:8000")
TERMINAL = ("succeeded", "failed")


class _ProgressFile:
    """A file object that reports progress as requests reads it. It has a
    length, so requests sends Content-Length instead of chunked encoding."""

    def __init__(self, path: Path, bar: tqdm) -> None:
        self._handle = path.open("rb")
        self._size = path.stat().st_size
        self._bar = bar

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._bar.update(len(data))
        return data

    def close(self) -> None:
        self._handle.close()


def _fail(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:300]}"


def upload(api: str, path: Path, *, quiet: bool = False) -> dict:
    size = path.stat().st_size
    response = requests.post(f"{api}/uploads", json={"filename": path.name, "size": size},
                             timeout=30)
    if response.status_code != 201:
        raise RuntimeError(f"the API refused the upload: {_fail(response)}")
    session = response.json()
    target = session["upload"]
    with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=quiet,
              file=sys.stderr) as bar:
        body = _ProgressFile(path, bar)
        try:
            put = requests.put(target["url"], data=body, headers=target["headers"],
                               timeout=600)
        finally:
            body.close()
    if put.status_code != 200:
        raise RuntimeError(f"S3 refused the upload: HTTP {put.status_code} {put.text[:300]}")
    return session


def wait(api: str, job_id: str, timeout: float, interval: float = 0.5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(f"{api}/jobs/{job_id}", timeout=30)
        if response.status_code != 200:
            raise RuntimeError(_fail(response))
        job = response.json()
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(interval)


def summary(job: dict) -> str:
    counts = job.get("counts") or {}
    lines = [
        f"job       {job['job_id']}",
        f"file      {job['filename']}",
        f"status    {job['status']}",
    ]
    if counts.get("rows_in") is not None:
        lines += [
            f"rows in   {counts['rows_in']:>12,}",
            f"loaded    {counts['rows_loaded']:>12,}",
            f"rejected  {counts['rows_rejected']:>12,}",
        ]
        for reason, count in (counts.get("rejected_by_reason") or {}).items():
            lines.append(f"  {reason:<28}{count:>10,}")
    if job.get("rejects"):
        lines.append(f"rejects   {job['rejects']['url']}")
    if job.get("error"):
        lines.append(f"error     {job['error']['code']}: {job['error']['message']}")
    return "\n".join(lines)


def _cmd_upload(args) -> int:
    try:
        session = upload(args.api_url, args.file, quiet=args.quiet)
    except (RuntimeError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"uploaded {args.file.name} as job {session['job_id']}", file=sys.stderr)
    if args.no_wait:
        print(json.dumps(session, indent=2))
        return 0
    job = wait(args.api_url, session["job_id"], args.timeout)
    print(json.dumps(job, indent=2) if args.json else summary(job))
    if job["status"] not in TERMINAL:
        print(f"error: job still {job['status']} after {args.timeout:.0f} s", file=sys.stderr)
        return 3
    return 0 if job["status"] == "succeeded" else 1


def _cmd_status(args) -> int:
    response = requests.get(f"{args.api_url}/jobs/{args.job_id}", timeout=30)
    if response.status_code != 200:
        print(f"error: {_fail(response)}", file=sys.stderr)
        return 2
    job = response.json()
    print(json.dumps(job, indent=2) if args.json else summary(job))
    return 0


def _cmd_jobs(args) -> int:
    params = {"limit": args.limit, **({"status": args.status} if args.status else {})}
    response = requests.get(f"{args.api_url}/jobs", params=params, timeout=30)
    if response.status_code != 200:
        print(f"error: {_fail(response)}", file=sys.stderr)
        return 2
    for job in response.json()["jobs"]:
        counts = job["counts"]
        print(f"{job['job_id']}  {job['status']:<15} {counts['rows_loaded'] or 0:>10}  "
              f"{job['filename']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.client",
                                     description="Client of the taxi ingest API.")
    parser.add_argument("--api-url", default=DEFAULT_API,
                        help="API base URL (default $TAXI_API_URL or %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("upload", help="upload a trip file and wait for its job")
    up.add_argument("file", type=Path)
    up.add_argument("--no-wait", action="store_true", help="print the job and return")
    up.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    up.add_argument("--json", action="store_true", help="print the job as JSON")
    up.add_argument("--quiet", action="store_true", help="no progress bar")
    up.set_defaults(handler=_cmd_upload)

    st = commands.add_parser("status", help="show one job")
    st.add_argument("job_id")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=_cmd_status)

    ls = commands.add_parser("jobs", help="list recent jobs, newest first")
    ls.add_argument("--status")
    ls.add_argument("--limit", type=int, default=20)
    ls.set_defaults(handler=_cmd_jobs)

    try:
        from scripts import client_analyze
    except ImportError:
        client_analyze = None
    if client_analyze is not None:
        an = commands.add_parser("analyze", help="analyse dashboard screenshots with Groq")
        client_analyze.add_arguments(an)
        an.set_defaults(handler=client_analyze.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "file", None) is not None and isinstance(args.file, Path) \
            and not args.file.is_file():
        print(f"error: {args.file} is not a file", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except requests.ConnectionError:
        print(f"error: cannot reach the API at {args.api_url}. Is the stack up ('make up')? "
              "Another address: --api-url or TAXI_API_URL.", file=sys.stderr)
        return 2
    except requests.Timeout:
        print(f"error: the API at {args.api_url} did not answer in time", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
