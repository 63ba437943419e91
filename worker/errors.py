"""How the worker classifies what goes wrong.

``IngestError`` is terminal: the file itself is the problem, retrying cannot
help, the job fails with a stable code and a message that says what was
found and what to do. ``TransientError`` is everything a retry may fix: a
database restart, a broker or S3 hiccup. ``JobBusy`` means another worker is
loading the same object right now.
"""

from __future__ import annotations


class IngestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        # Both in args, so the exception survives pickling (Celery does it).
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TransientError(Exception):
    """Retry with backoff."""


class JobBusy(Exception):
    """Another worker holds the object's load lock."""
