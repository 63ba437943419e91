"""Routes of the dashboard analysis feature (registered by app.py).

    POST /analyze-dashboard   multipart form ('files', 'prompt', 'format',
                              'save') or JSON ({"keys": [...], ...})
    GET  /reports             the latest saved reports (?format=, ?limit=)
    GET  /reports/{id}        one saved report (?format=html|json)

Handlers only parse, call ``service`` and shape the answer; the Groq client
and the S3 client are made here, per request, never at import.
"""

from __future__ import annotations

import uuid

from chalice import Blueprint, Response

from chalicelib.analysis import inputs, reports, service
from chalicelib.analysis.render import HTML_HEADERS, report_html, report_list_html
from chalicelib.analysis.vision import GroqVision, groq_client
from chalicelib.http import ApiError, json_body, json_response, translate_errors
from chalicelib.multipart import parse as parse_multipart
from infra.aws import s3_client
from infra.db import get_engine
from infra.settings import Settings, get_settings

bp = Blueprint(__name__)

#: JSON also under the types curl and simple clients send by default.
_CONTENT_TYPES = ["multipart/form-data", "application/json",
                  "application/x-www-form-urlencoded", "text/plain"]


@bp.route("/analyze-dashboard", methods=["POST"], content_types=_CONTENT_TYPES)
@translate_errors
def analyze_dashboard():
    settings = get_settings()
    request = _analysis_request(settings)
    with groq_client(settings) as client:
        view = service.analyse(
            request, settings, vision=GroqVision.from_settings(client, settings),
            s3=s3_client(settings) if request.keys else None,
            engine=get_engine(settings) if request.save else None)
    headers = {}
    if view["saved"]:
        headers = {"Location": f"reports/{view['id']}", "X-Report-Id": view["id"]}
    return _answer(view, request.format, status=201 if view["saved"] else 200,
                   headers=headers)


@bp.route("/reports", methods=["GET"])
@translate_errors
def list_reports():
    params = bp.current_request.query_params or {}
    fmt = inputs.parse_format(params.get("format"), _accept())
    try:
        limit = int(params.get("limit", "20"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 100:
        raise ApiError(400, "invalid_limit", "'limit' must be a whole number from 1 to 100.")
    with get_engine().connect() as conn:
        found = [service.saved_view(saved) for saved in reports.latest(conn, limit=limit)]
    if fmt == "html":
        return Response(body=report_list_html(found), status_code=200, headers=HTML_HEADERS)
    return json_response({"reports": [_summary(view) for view in found]})


@bp.route("/reports/{report_id}", methods=["GET"])
@translate_errors
def get_report(report_id):
    params = bp.current_request.query_params or {}
    fmt = inputs.parse_format(params.get("format"), _accept())
    try:
        key = uuid.UUID(report_id)
    except ValueError:
        raise ApiError(400, "invalid_report_id",
                       "The report id must be a UUID such as the 'id' POST "
                       "/analyze-dashboard returned.") from None
    with get_engine().connect() as conn:
        saved = reports.get(conn, key)
    if saved is None:
        raise ApiError(404, "report_not_found", f"There is no report {key}.")
    return _answer(service.saved_view(saved), fmt)


def _analysis_request(settings: Settings) -> inputs.AnalysisRequest:
    request = bp.current_request
    query = request.query_params or {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        parts = parse_multipart(content_type, request.raw_body or b"",
                                max_bytes=settings.max_direct_upload_bytes)
        return inputs.from_form(parts, query=query, accept=_accept())
    return inputs.from_json(json_body(request.raw_body), query=query, accept=_accept(),
                            prefix=settings.dashboards_prefix)


def _accept() -> str:
    return bp.current_request.headers.get("accept", "")


def _answer(view: dict, fmt: str, *, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    if fmt == "html":
        return Response(body=report_html(view), status_code=status,
                        headers={**HTML_HEADERS, **(headers or {})})
    return json_response(view, status=status, headers=headers)


def _summary(view: dict) -> dict:
    keys = ("id", "created_at", "title", "file_names", "model", "usage")
    return {key: view[key] for key in keys}
