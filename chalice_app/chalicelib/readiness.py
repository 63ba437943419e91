"""``GET /ready``: can this API do its work right now? Each dependency is
checked with a short timeout, all at once, and named in the answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from infra.settings import Settings

_URLISH = re.compile(r"\w+://\S+")


def _postgres(settings: Settings) -> str:
    from infra.db import get_engine

    with get_engine(settings).connect() as conn:
        conn.execute(text("SELECT 1"))
    return "reachable"


def _s3(settings: Settings) -> str:
    from infra.aws import s3_client

    s3_client(settings).head_bucket(Bucket=settings.s3_bucket)
    return f"bucket {settings.s3_bucket} exists"


def _sqs(settings: Settings) -> str:
    from infra.aws import sqs_client

    sqs_client(settings).get_queue_url(QueueName=settings.ingest_queue_name)
    return f"queue {settings.ingest_queue_name} exists"


def _rabbitmq(settings: Settings) -> str:
    from kombu import Connection

    with Connection(settings.broker_url, connect_timeout=3) as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
    return "reachable"


CHECKS: dict[str, Callable[[Settings], str]] = {
    "postgres": _postgres, "s3": _s3, "sqs": _sqs, "rabbitmq": _rabbitmq,
}


def check_all(settings: Settings, timeout: float = 8.0) -> tuple[bool, dict]:
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = {name: pool.submit(check, settings) for name, check in CHECKS.items()}
        for name, future in futures.items():
            try:
                results[name] = {"ok": True, "detail": future.result(timeout=timeout)}
            except Exception as exc:  # noqa: BLE001 - every failure is a "not ready"
                results[name] = {"ok": False, "detail": _scrub(exc)}
    return all(r["ok"] for r in results.values()), results


def _scrub(exc: BaseException) -> str:
    """A one-line reason with anything URL-like (which may hold a password)
    removed."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {_URLISH.sub('<url>', first)[:160]}".rstrip(": ")
