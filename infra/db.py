"""The Postgres engine: one per process, created on first use.

A forked worker child must not share its parent's sockets, so the engine is
keyed by process id and a new process gets a new one.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import Engine, create_engine

from infra.settings import Settings, get_settings

_lock = threading.Lock()
_engines: dict[tuple[int, str], Engine] = {}


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    key = (os.getpid(), settings.sqlalchemy_url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_engine(
                settings.sqlalchemy_url,
                pool_pre_ping=True,
                pool_size=2,
                max_overflow=4,
                connect_args={"timeout": 10, "application_name": _app_name()},
            )
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Forget engines inherited from a parent process without closing its
    connections (they belong to the parent)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)
        _engines.clear()


def _app_name() -> str:
    return os.environ.get("TAXI_PROCESS_NAME", "taxi-ingest")[:60]
