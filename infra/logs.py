"""Logging set-up, called once by each entry point (never on import)."""

from __future__ import annotations

import logging.config
import os

_QUIET = ("botocore", "boto3", "urllib3", "s3transfer", "amqp", "kombu")


def configure_logging(process: str) -> None:
    """One stream handler on the root logger, at ``LOG_LEVEL`` (INFO by
    default); chatty client libraries at WARNING or above."""
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    quiet = logging.getLevelName(max(logging.WARNING, logging.getLevelName(level)))
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {
            "format": f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": quiet} for name in _QUIET},
    })
