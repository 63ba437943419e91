"""Logging set-up, called once by each entry point (never on import)."""

from __future__ import annotations

import logging
import os


def configure_logging(process: str) -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s",
    )
    for noisy in ("botocore", "boto3", "urllib3", "amqp", "kombu"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
