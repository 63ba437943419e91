"""GroqVision's retries and error mapping, with a fake client that raises
the SDK's own exception types (no network)."""

from __future__ import annotations

import groq
import httpx
import pytest
from groq.types.chat import ChatCompletion

from chalicelib.analysis.images import PreparedImage
from chalicelib.analysis.vision import INSTRUCTIONS, GroqVision, retry_after_seconds
from chalicelib.http import ApiError

pytestmark = pytest.mark.unit

KEY = "gsk_unit_secret_value"
IMAGE = PreparedImage("a.png", "image/png", b"\x89PNG\r\n\x1a\n....", 12, 1, 1, False)
_REQUEST = httpx.Request("POST", "http://127.0.0.1/openai/v1/chat/completions")


def _status(status: int, code: str = "x", message: str = "m", headers=None):
    response = httpx.Response(status, headers=headers or {}, request=_REQUEST)
    body = {"error": {"message": message, "code": code}}
    kinds = {400: groq.BadRequestError, 401: groq.AuthenticationError,
             404: groq.NotFoundError, 429: groq.RateLimitError}
    kind = kinds.get(status, groq.InternalServerError if status >= 500 else groq.APIStatusError)
    return kind(message, response=response, body=body)


def _completion(text: str = "# T\n\nbody") -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    })


class FakeCompletions:
    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls: list[dict] = []

    def create(self, **kwargs):
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FakeGroq:
    """The part of groq.Groq the wrapper uses."""

    api_key = KEY

    def __init__(self, *outcomes):
        self.completions = FakeCompletions(outcomes)
        self.chat = self


def _vision(client, retries=2, max_wait=10.0):
    waits: list[float] = []
    vision = GroqVision(client, model="m", max_retries=retries, max_retry_wait_seconds=max_wait,
                        sleep=waits.append)
    return vision, waits


def test_prompt_goes_in_the_user_message_with_the_images():
    client = FakeGroq(_completion())
    answer = _vision(client)[0].describe("What stands out?", [IMAGE])
    call = client.completions.calls[0]
    assert [m["role"] for m in call["messages"]] == ["user"]
    text, image = call["messages"][0]["content"]
    assert text["text"].startswith(INSTRUCTIONS) and text["text"].endswith("What stands out?")
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert answer.markdown.startswith("# T")
    assert answer.usage == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_429_is_retried_after_the_wait_it_asks_for():
    client = FakeGroq(_status(429, headers={"retry-after": "2"}), _completion())
    vision, waits = _vision(client)
    assert vision.describe("p", [IMAGE]).markdown
    assert waits == [2.0]


def test_429_gives_up_after_the_retries_with_retry_after():
    client = FakeGroq(*[_status(429, headers={"retry-after": "3"})] * 3)
    vision, waits = _vision(client, retries=2)
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert waits == [3.0, 3.0]
    assert (caught.value.status, caught.value.code) == (429, "groq_rate_limited")
    assert caught.value.headers == {"Retry-After": "3"}


def test_429_asking_for_too_long_a_wait_is_passed_on_at_once():
    client = FakeGroq(_status(429, headers={"retry-after": "300"}))
    vision, waits = _vision(client, max_wait=10)
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert waits == []
    assert caught.value.headers == {"Retry-After": "300"}


def test_server_errors_back_off_then_502():
    client = FakeGroq(_status(500), _status(502), _status(500))
    vision, waits = _vision(client, retries=2)
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert waits == [0.5, 1.0]
    assert (caught.value.status, caught.value.code) == (502, "groq_error")


@pytest.mark.parametrize(("error", "status", "code"), [
    (_status(401), 502, "groq_auth_failed"),
    (_status(404, "model_not_found"), 503, "groq_model_unavailable"),
    (_status(400, "model_decommissioned"), 503, "groq_model_unavailable"),
    (_status(413), 422, "groq_request_too_large"),
    (_status(400, "invalid_request", "too many images"), 422, "groq_rejected_request"),
    (_status(503), 503, "groq_unavailable"),
    (groq.APITimeoutError(request=_REQUEST), 504, "groq_timeout"),
])
def test_failures_map_to_clear_statuses(error, status, code):
    vision, waits = _vision(FakeGroq(error, error, error), retries=0)
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert (caught.value.status, caught.value.code) == (status, code)
    assert KEY not in caught.value.message


def test_unreachable_is_retried_then_502():
    error = groq.APIConnectionError(request=_REQUEST)
    vision, waits = _vision(FakeGroq(error, error), retries=1)
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert waits == [0.5]
    assert (caught.value.status, caught.value.code) == (502, "groq_unreachable")


def test_groq_echoing_the_key_does_not_leak_it():
    vision, _ = _vision(FakeGroq(_status(400, "bad", f"key {KEY} is odd")), retries=0)
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert KEY not in caught.value.message
    assert "[GROQ_API_KEY]" in caught.value.message


def test_empty_answer_is_502():
    vision, _ = _vision(FakeGroq(_completion("  ")))
    with pytest.raises(ApiError) as caught:
        vision.describe("p", [IMAGE])
    assert caught.value.code == "groq_empty_answer"


def test_retry_after_forms():
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(httpx.Headers({"retry-after": "7"})) == 7.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
                                             )) == 0.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None
