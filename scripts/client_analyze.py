"""The ``analyze`` command of the command-line client:

    python -m scripts.client analyze dashboard.png [more.png ...] --out report.html

posts the screenshots to ``POST /analyze-dashboard`` as a multipart form,
writes the HTML report to ``--out`` and prints where it went (and the saved
report's id). ``--presigned`` uploads the images through ``POST /uploads``
first and names their keys instead, for images too large for a request
body. Exits 0 on success, 2 when the API or S3 refused, 1 for a local
problem (a missing file, an unwritable output). Does network and file I/O.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".webp": "image/webp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                        help="dashboard screenshots (PNG, JPEG or WebP)")
    parser.add_argument("--prompt", default=None,
                        help="what to ask about the dashboard (default: the API's prompt)")
    parser.add_argument("--out", type=Path, default=Path("dashboard-report.html"),
                        help="where to write the HTML report (default %(default)s)")
    parser.add_argument("--no-save", action="store_true",
                        help="do not keep the report in the API's database")
    parser.add_argument("--presigned", action="store_true",
                        help="upload the images through presigned URLs first "
                             "(for images too large to post directly)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for the analysis (default %(default)s)")


def run(args) -> int:
    api = args.api_url.rstrip("/")
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        print(f"error: not a file: {', '.join(missing)}", file=sys.stderr)
        return 1
    fields = {"format": "html", "save": "false" if args.no_save else "true"}
    if args.prompt:
        fields["prompt"] = args.prompt
    try:
        if args.presigned:
            keys = [_upload(api, path) for path in args.images]
            response = requests.post(f"{api}/analyze-dashboard", timeout=args.timeout,
                                     json={**fields, "save": not args.no_save, "keys": keys})
        else:
            response = _post_form(api, args.images, fields, args.timeout)
    except (RuntimeError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if response.status_code not in (200, 201):
        print(f"error: the API refused the analysis: {_failure(response)}", file=sys.stderr)
        if response.headers.get("Retry-After"):
            print(f"Try again in {response.headers['Retry-After']} s.", file=sys.stderr)
        return 2
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(response.content)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    report_id = response.headers.get("X-Report-Id")
    saved = f" (saved as report {report_id})" if report_id else " (not saved)"
    print(f"wrote the report to {args.out.resolve()}{saved}")
    return 0


def _post_form(api: str, paths: list[Path], fields: dict, timeout: float) -> requests.Response:
    handles = [path.open("rb") for path in paths]
    try:
        files = [("files", (path.name, handle, _TYPES.get(path.suffix.lower(),
                                                          "application/octet-stream")))
                 for path, handle in zip(paths, handles, strict=True)]
        return requests.post(f"{api}/analyze-dashboard", data=fields, files=files,
                             headers={"Accept": "text/html"}, timeout=timeout)
    finally:
        for handle in handles:
            handle.close()


def _upload(api: str, path: Path) -> str:
    """Upload one image through a presigned PUT; return its key."""
    size = path.stat().st_size
    response = requests.post(f"{api}/uploads", timeout=30,
                             json={"filename": path.name, "size": size,
                                   "kind": "dashboard_image"})
    if response.status_code != 201:
        raise RuntimeError(f"the API refused to upload {path.name}: {_failure(response)}")
    session = response.json()
    target = session["upload"]
    with path.open("rb") as handle:
        put = requests.put(target["url"], data=handle, headers=target["headers"], timeout=300)
    if put.status_code != 200:
        raise RuntimeError(f"S3 refused {path.name}: HTTP {put.status_code} {put.text[:200]}")
    return session["key"]


def _failure(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:300]}"
