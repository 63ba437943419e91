"""One JSON shape for every error the API returns:

    {"error": {"code": "job_not_found", "message": "...what to do..."}}

Handlers raise ``ApiError``; the app turns it into a response. Nothing here
ever puts a traceback, a connection string or a key into a body.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import ChaliceUnhandledError, Response

JSON_HEADERS = {"Content-Type": "application/json"}
logger = logging.getLogger(__name__)


class ApiError(ChaliceUnhandledError):
    """Raised by handlers. Chalice passes ChaliceUnhandledError subclasses on
    to middleware, where ``app.py`` turns them into responses."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message}}
    return Response(body=json.dumps(body), status_code=status,
                    headers={**JSON_HEADERS, **(headers or {})})


_CHALICE_CODES = {
    "BadRequestError": "bad_request", "UnauthorizedError": "unauthorized",
    "ForbiddenError": "forbidden", "NotFoundError": "not_found",
    "MethodNotAllowedError": "method_not_allowed", "ConflictError": "conflict",
    "UnprocessableEntityError": "unprocessable_entity",
    "TooManyRequestsError": "too_many_requests",
    "RequestTimeoutError": "request_timeout",
    "UnsupportedMediaType": "unsupported_media_type",
    "InternalServerError": "internal_error",
}


def normalise(response: Response) -> Response:
    """Rewrite an error Chalice produced itself ({"Code", "Message"}) into the
    API's shape, so clients meet one shape whatever raised it."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        code = _CHALICE_CODES.get(str(body["Code"]), "error")
        message = str(body.get("Message", ""))
        if code == "internal_error":
            message = ("The server failed to handle the request; it has been logged. "
                       "Try again, and report it if it persists.")
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
        return error_response(response.status_code, code, message, headers)
    return response


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(body=json.dumps(body, default=str), status_code=status,
                    headers={**JSON_HEADERS, **(headers or {})})


def json_body(raw: bytes | None) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong."""
    if not raw:
        raise ApiError(400, "invalid_json", "The request body is empty; send a JSON object.")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json",
                       f"The request body is not valid JSON ({exc.__class__.__name__}).") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return value


def translate_errors(view: Callable) -> Callable:
    """Turn the failures a handler cannot help (a dependency down, a bad
    configuration) into ApiErrors. Chalice answers any other exception of a
    view with its own 500 before middleware sees it, so this wraps the view."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
    from sqlalchemy.exc import InterfaceError, OperationalError

    from infra.settings import SettingsError

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except SettingsError as exc:
            logger.error("%s", exc)
            raise ApiError(503, "misconfigured", str(exc)) from None
        except (OperationalError, InterfaceError) as exc:
            logger.warning("Postgres unreachable: %s", str(exc.orig).splitlines()[0][:160])
            raise ApiError(503, "database_unavailable",
                           "The job database cannot be reached right now. Try again shortly; "
                           "GET /ready shows which dependency is down.",
                           {"Retry-After": "5"}) from None
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            logger.warning("S3 or SQS unreachable: %s", exc)
            raise ApiError(503, "storage_unavailable",
                           "Object storage cannot be reached right now. Try again shortly; "
                           "GET /ready shows which dependency is down.",
                           {"Retry-After": "5"}) from None

    return wrapper
