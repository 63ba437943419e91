"""Groq's vision model behind one small class. Does network I/O through the
``groq.Groq`` client it is given; ``groq_client`` builds that client from
settings, on demand and never at import.

Every failure of Groq becomes an ``ApiError`` with its own status and a
message that says what to do; the API key never appears in one.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import groq

from chalicelib.analysis.images import PreparedImage
from chalicelib.http import ApiError
from infra.settings import Settings

logger = logging.getLogger(__name__)

#: Some vision models refuse a system message beside images, so the
#: instructions travel in the user message, ahead of the user's prompt.
INSTRUCTIONS = (
    "You are reviewing screenshots of a business-intelligence dashboard. "
    "Answer in Markdown. Start each part of the answer with a '## ' heading "
    "(for example Summary, Key figures, Trends, Anomalies, Recommendations). "
    "Only describe what the screenshots show; say so when a value is unreadable."
)
_FIRST_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class VisionAnswer:
    markdown: str
    model: str
    usage: dict = field(default_factory=dict)


def groq_client(settings: Settings) -> groq.Groq:
    """A Groq client for this request. The SDK's own retries are off: the
    wrapper retries, so that the number of attempts and waits stay bounded."""
    if not settings.groq_api_key:
        raise ApiError(503, "groq_not_configured",
                       "Dashboard analysis needs a Groq API key: set GROQ_API_KEY in the "
                       "API's environment and restart it.")
    return groq.Groq(api_key=settings.groq_api_key, base_url=settings.groq_base_url,
                     timeout=settings.groq_timeout_seconds, max_retries=0)


class GroqVision:
    """Asks one vision model about a set of images."""

    def __init__(self, client: groq.Groq, *, model: str, max_retries: int,
                 max_completion_tokens: int = 2048, max_retry_wait_seconds: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._model = model
        self._max_retries = max_retries
        self._max_tokens = max_completion_tokens
        self._max_wait = max_retry_wait_seconds
        self._sleep = sleep

    @classmethod
    def from_settings(cls, client: groq.Groq, settings: Settings) -> GroqVision:
        return cls(client, model=settings.groq_model, max_retries=settings.groq_max_retries,
                   max_completion_tokens=settings.groq_max_completion_tokens,
                   max_retry_wait_seconds=settings.groq_max_retry_wait_seconds)

    def describe(self, prompt: str, images: list[PreparedImage]) -> VisionAnswer:
        content: list[dict] = [{"type": "text", "text": f"{INSTRUCTIONS}\n\n{prompt}"}]
        content += [{"type": "image_url", "image_url": {"url": image.data_url}}
                    for image in images]
        messages = [{"role": "user", "content": content}]
        attempt = 0
        while True:
            try:
                completion = self._client.chat.completions.create(
                    model=self._model, messages=messages, temperature=0.2,
                    max_completion_tokens=self._max_tokens)
                return self._answer(completion)
            except groq.APIStatusError as exc:
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    raise self._status_error(exc) from None
                logger.warning("Groq answered %d; attempt %d of %d, retrying in %.1f s",
                               exc.status_code, attempt + 1, self._max_retries + 1, wait)
            except groq.APITimeoutError:
                logger.warning("Groq did not answer within the timeout (model %s)",
                               self._model)
                raise ApiError(504, "groq_timeout",
                               "Groq did not answer in time (GROQ_TIMEOUT_SECONDS). Try "
                               "again with fewer or smaller images, or later.") from None
            except groq.APIConnectionError as exc:
                if attempt >= self._max_retries:
                    logger.warning("Groq unreachable: %s", exc.__class__.__name__)
                    raise ApiError(502, "groq_unreachable",
                                   "The API could not reach Groq (GROQ_BASE_URL). Check the "
                                   "network and the base URL, then try again.") from None
                wait = _FIRST_BACKOFF_SECONDS * 2 ** attempt
                logger.warning("Groq unreachable; attempt %d of %d, retrying in %.1f s",
                               attempt + 1, self._max_retries + 1, wait)
            self._sleep(wait)
            attempt += 1

    def _answer(self, completion) -> VisionAnswer:
        choices = getattr(completion, "choices", None) or []
        text = choices[0].message.content if choices else None
        if not text or not text.strip():
            raise ApiError(502, "groq_empty_answer",
                           "Groq answered without any text. Try again, or with another "
                           "prompt.")
        usage = completion.usage.model_dump(exclude_none=True) if completion.usage else {}
        return VisionAnswer(markdown=text, model=completion.model or self._model,
                            usage=_plain_usage(usage))

    def _retry_wait(self, exc: groq.APIStatusError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if exc.status_code != 429 and exc.status_code < 500:
            return None
        if attempt >= self._max_retries:
            return None
        wait = retry_after_seconds(exc.response.headers)
        if wait is None:
            wait = _FIRST_BACKOFF_SECONDS * 2 ** attempt
        return wait if wait <= self._max_wait else None

    def _status_error(self, exc: groq.APIStatusError) -> ApiError:
        status = exc.status_code
        code = _groq_code(exc)
        logger.warning("Groq refused the request: status %d, code %s, model %s",
                       status, code or "-", self._model)
        if status in (401, 403):
            return ApiError(502, "groq_auth_failed",
                            "Groq rejected the API key. Set a valid GROQ_API_KEY for the API "
                            "and restart it.")
        if status == 404 or code in ("model_decommissioned", "model_not_found"):
            return ApiError(503, "groq_model_unavailable",
                            f"Groq does not serve the model '{self._model}' (it is unknown or "
                            "decommissioned). Set GROQ_MODEL to a current vision model.")
        if status == 413 or code == "request_too_large":
            return ApiError(422, "groq_request_too_large",
                            "Groq refused the request as too large even after the images "
                            "were shrunk. Send fewer or smaller images, or lower "
                            "GROQ_MAX_REQUEST_BYTES.")
        if status == 429:
            seconds = _whole_seconds(exc.response.headers, default=10)
            return ApiError(429, "groq_rate_limited",
                            f"Groq's rate limit for this key is reached. Try again in "
                            f"{seconds} s.", headers={"Retry-After": str(seconds)})
        if status in (400, 422):
            return ApiError(422, "groq_rejected_request",
                            "Groq could not process these images with this prompt"
                            f"{_detail(exc, self._client.api_key)}. Change the images or "
                            "the prompt.")
        if status == 503:
            seconds = _whole_seconds(exc.response.headers, default=60)
            return ApiError(503, "groq_unavailable",
                            f"Groq is over capacity or down for maintenance. Try again in "
                            f"{seconds} s.", headers={"Retry-After": str(seconds)})
        return ApiError(502, "groq_error",
                        f"Groq failed to answer (status {status}). Try again later.")


def _whole_seconds(headers, *, default: int) -> int:
    """What to put in our own Retry-After: Groq's wait, at least a second."""
    wait = retry_after_seconds(headers)
    return max(1, round(wait)) if wait is not None else default


def retry_after_seconds(headers) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, ``retry-after`` in
    seconds, or ``retry-after`` as an HTTP date."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(parsed.timestamp() - time.time(), 0.0)


def _groq_code(exc: groq.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return inner["code"]
    return None


def _detail(exc: groq.APIStatusError, secret: str | None) -> str:
    """Groq's own message, short, for a 4xx about the request's content;
    the key is cut out should Groq ever echo it."""
    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    message = " ".join(message.split())
    if secret:
        message = message.replace(secret, "[GROQ_API_KEY]")
    return f" (Groq says: {message[:200]})"


def _plain_usage(usage: dict) -> dict:
    """Token counts and timings only: numbers, nested one level at most."""
    plain: dict = {}
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            plain[key] = value
        elif isinstance(value, dict):
            inner = {k: v for k, v in value.items()
                     if isinstance(v, int | float) and not isinstance(v, bool)}
            if inner:
                plain[key] = inner
    return plain
