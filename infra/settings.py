"""One typed settings object, read from the environment and checked once.

Every field is an environment variable of the same name in upper case. A
missing or malformed value stops the process with a message that names the
variable, so nobody has to guess which of twenty settings is wrong.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PREFIX_RE = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$")

#: Rule names the cleaning step knows; ``DISABLED_RULES`` may name any of them.
CLEANING_RULES = (
    "required_fields",
    "implausible_timestamp",
    "non_positive_distance",
    "negative_total",
    "passenger_count_range",
    "dropoff_not_after_pickup",
    "pickup_outside_file_month",
    "unknown_zone",
    "duplicate_trip",
)

PositiveInt = Annotated[int, Field(gt=0)]


class SettingsError(RuntimeError):
    """The environment does not describe a usable configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"

    # The endpoint this process reaches S3 and SQS by. Empty means AWS itself.
    aws_endpoint_url: str | None = None
    # The endpoint a client reaches S3 by; presigned URLs are signed for it.
    s3_public_endpoint_url: str | None = None
    aws_region: str = "us-east-1"

    s3_bucket: str = "taxi-ingest"
    raw_prefix: str = "raw/"
    rejects_prefix: str = "rejects/"
    dashboards_prefix: str = "dashboards/"
    ingest_queue_name: str = "taxi-ingest-events"
    ingest_dlq_name: str = "taxi-ingest-events-dlq"
    ingest_max_receive_count: PositiveInt = 5
    # How long a received SQS message stays hidden while the bridge works on it.
    ingest_visibility_timeout_seconds: PositiveInt = 60
    celery_queue: str = "taxi-ingest"

    max_upload_bytes: PositiveInt = 1024 * 1024 * 1024
    # Lambda refuses request bodies above about 6 MB; the old POST /upload
    # takes the file in the body, so it gets a lower limit of its own.
    max_direct_upload_bytes: PositiveInt = 5 * 1024 * 1024
    upload_url_expiry_seconds: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] = 900

    # Celery's limits must stay below RabbitMQ's consumer_timeout (30 min).
    task_soft_time_limit_seconds: PositiveInt = 20 * 60
    task_time_limit_seconds: PositiveInt = 25 * 60
    task_max_retries: Annotated[int, Field(ge=0)] = 5
    # Rows read, cleaned and encoded at a time: memory is about proportional
    # to it, and halving it from 131,072 cost no measurable speed.
    ingest_batch_rows: PositiveInt = 65_536
    disabled_rules: str = ""

    groq_api_key: str | None = Field(default=None, repr=False)
    groq_base_url: str = "https://api.groq.com"
    groq_model: str = "meta-llama/llama-4-scout-17b-16e-instruct"
    groq_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    groq_max_retries: Annotated[int, Field(ge=0)] = 2
    groq_max_images: PositiveInt = 5
    groq_max_request_bytes: PositiveInt = 4 * 1024 * 1024
    # What POST /analyze-dashboard accepts before shrinking: per image and in
    # total. Images above the request limit are scaled down, not refused.
    groq_max_image_bytes: PositiveInt = 20 * 1024 * 1024
    groq_max_total_image_bytes: PositiveInt = 40 * 1024 * 1024
    # Groq refuses images above about 33 megapixels; larger ones are scaled.
    groq_max_image_pixels: PositiveInt = 33_000_000
    groq_max_completion_tokens: PositiveInt = 2048
    # A 429's retry-after longer than this is not waited for: the API answers
    # 429 at once and passes the wait on to the client.
    groq_max_retry_wait_seconds: Annotated[float, Field(ge=0)] = 10.0

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not re.match(r"^postgres(ql)?(\+pg8000)?://", value):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _amqp_only(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://", "pyamqp://")):
            raise ValueError("must be an amqp:// URL (RabbitMQ)")
        return value

    @field_validator("aws_endpoint_url", "s3_public_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("raw_prefix", "rejects_prefix", "dashboards_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError("must be a key prefix such as 'raw/' (ending in '/')")
        return value

    @field_validator("disabled_rules")
    @classmethod
    def _known_rules(cls, value: str) -> str:
        unknown = [n for n in _split(value) if n not in CLEANING_RULES]
        if unknown:
            raise ValueError(
                f"unknown rule(s) {', '.join(unknown)}; "
                f"known: {', '.join(CLEANING_RULES)}"
            )
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the pg8000 driver spelled out."""
        return re.sub(r"^postgres(ql)?(\+pg8000)?://", "postgresql+pg8000://",
                      self.database_url)

    @property
    def presign_endpoint_url(self) -> str | None:
        return self.s3_public_endpoint_url or self.aws_endpoint_url

    @property
    def enabled_rules(self) -> tuple[str, ...]:
        off = set(_split(self.disabled_rules))
        return tuple(name for name in CLEANING_RULES if name not in off)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings() -> Settings:
    """Read the environment; raise SettingsError naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "?"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError(
            "invalid configuration: " + "; ".join(problems)
            + ". Fix the environment variable(s) and start again."
        ) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
