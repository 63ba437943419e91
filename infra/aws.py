"""boto3 clients, made on first use and never at import (moto must be able to
patch first, and importing must not need a network). A forked child makes
its own: the cache is keyed by process id."""

from __future__ import annotations

import functools
import os

import boto3
from botocore.config import Config

from infra.settings import Settings


def s3_client(settings: Settings):
    """S3 as this process reaches it."""
    return _client(os.getpid(), "s3", settings.aws_endpoint_url, settings.aws_region)


def s3_presign_client(settings: Settings):
    """S3 as the client reaches it: URLs are signed for this host, because a
    signature covers the host and editing the URL afterwards breaks it."""
    return _client(os.getpid(), "s3", settings.presign_endpoint_url,
                   settings.aws_region)


def sqs_client(settings: Settings):
    return _client(os.getpid(), "sqs", settings.aws_endpoint_url, settings.aws_region)


@functools.lru_cache(maxsize=32)
def _client(pid: int, service: str, endpoint_url: str | None, region: str):
    options: dict = {"retries": {"max_attempts": 5, "mode": "standard"},
                     "connect_timeout": 5, "read_timeout": 60}
    if service == "s3":
        # Without s3v4 boto3 presigns with SigV2 against a custom endpoint.
        options.update(signature_version="s3v4", s3={"addressing_style": "path"})
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=region, config=Config(**options))
