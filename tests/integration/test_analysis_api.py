"""POST /analyze-dashboard and GET /reports through the real app, the real
groq client, the stand-in Groq server on 127.0.0.1 and a real Postgres."""

from __future__ import annotations

import io
import json
import logging
import socket
import uuid

import pytest
from chalice.test import Client
from PIL import Image
from sqlalchemy import select
from urllib3 import encode_multipart_formdata

from infra.schema import dashboard_analysis_reports
from infra.settings import get_settings
from tests.groq_standin import KEY, MODEL, GroqStandIn, executable_content

pytestmark = pytest.mark.integration

SHOT = "powerbi_nyc_taxi_dashboard.png"
HOSTILE_NAME = "'><img src=x onerror=alert(1)><b onmouseover=alert(2)>{{7*7}}.png"


@pytest.fixture(scope="module")
def screenshot(fixtures_dir) -> bytes:
    return (fixtures_dir / SHOT).read_bytes()


@pytest.fixture
def standin():
    with GroqStandIn() as server:
        yield server


@pytest.fixture
def env(monkeypatch, database_url, standin):
    """The API's environment, pointing at the stand-in; a test may change
    any variable and call ``env.apply()``."""
    class Env:
        def set(self, **values):
            for name, value in values.items():
                if value is None:
                    monkeypatch.delenv(name, raising=False)
                else:
                    monkeypatch.setenv(name, str(value))
            get_settings.cache_clear()

    for name in ("AWS_ENDPOINT_URL", "GROQ_MODEL", "GROQ_MAX_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    environment = Env()
    environment.set(DATABASE_URL=database_url, GROQ_API_KEY=KEY,
                    GROQ_BASE_URL=standin.base_url, GROQ_TIMEOUT_SECONDS="5",
                    GROQ_MAX_RETRIES="1")
    yield environment
    get_settings.cache_clear()


@pytest.fixture
def api(env):
    import app

    with Client(app.app) as client:
        yield client


def _form(files: list[tuple[str, bytes]], **fields: str) -> tuple[bytes, dict]:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    parts += list(fields.items())
    body, content_type = encode_multipart_formdata(parts)
    return body, {"Content-Type": content_type}


def _post(api, files, accept: str | None = None, **fields):
    body, headers = _form(files, **fields)
    if accept:
        headers["Accept"] = accept
    return api.http.post("/analyze-dashboard", headers=headers, body=body)


def _header(response, name: str) -> str | None:
    """A response header by name, whatever its case (the test client keeps it)."""
    return {k.lower(): v for k, v in response.headers.items()}.get(name)


def _error(response) -> dict:
    return json.loads(response.body)["error"]


def _row(db_engine, report_id: str):
    with db_engine.connect() as conn:
        return conn.execute(select(dashboard_analysis_reports).where(
            dashboard_analysis_reports.c.id == uuid.UUID(report_id))).one_or_none()


def test_screenshot_analysed_saved_and_served_as_html(api, standin, screenshot, db_engine):
    response = _post(api, [(SHOT, screenshot)], format="html")

    assert response.status_code == 201, response.body
    assert _header(response, "content-type").startswith("text/html")
    assert "default-src 'none'" in _header(response, "content-security-policy")
    html = response.body.decode()
    assert executable_content(html) == []
    assert "<h2>Key figures</h2>" in html and SHOT in html

    (received,) = standin.received
    assert received.body["model"] == MODEL
    assert [m["role"] for m in received.body["messages"]] == ["user"]
    assert "New York City taxi trips" in received.prompt
    assert received.images == [("image/png", screenshot)]

    report_id = _header(response, "x-report-id")
    row = _row(db_engine, report_id)
    assert row.file_names == [SHOT]
    assert row.model == MODEL
    assert row.markdown.startswith("# NYC taxi trips, January 2025")
    assert row.prompt.startswith("Describe what this dashboard")
    assert row.structured["title"] == "NYC taxi trips, January 2025"
    assert [s["heading"] for s in row.structured["sections"]] == [
        "NYC taxi trips, January 2025", "Key figures", "Trends", "Anomalies"]
    assert row.structured["images"][0]["resized"] is False
    assert row.usage["total_tokens"] == 1444


def test_json_answer_without_saving(api, standin, screenshot, db_engine):
    response = _post(api, [(SHOT, screenshot)], prompt="Which borough leads?", format="json",
                     save="false")

    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert body["id"] is None and body["saved"] is False
    assert body["prompt"] == "Which borough leads?"
    assert body["sections"][1] == {"heading": "Key figures", "level": 2, "markdown":
                                   body["sections"][1]["markdown"]}
    assert "Manhattan" in body["sections"][1]["markdown"]
    assert body["usage"]["total_tokens"] == 1444
    assert standin.received[0].prompt.endswith("Which borough leads?")


def test_hostile_answer_name_and_prompt_stay_inert(api, standin, screenshot, db_engine):
    standin.mode = "hostile"
    prompt = "Explain {{ 7*7 }} and {% print('x') %} <script>alert('p')</script>"
    response = _post(api, [(HOSTILE_NAME, screenshot)], prompt=prompt, format="html")

    assert response.status_code == 201, response.body
    html = response.body.decode()
    assert executable_content(html) == []
    assert "{{ 7*7 }}" in html and "{% for x in range(3) %}loop{% endfor %}" in html
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;b onmouseover=alert(2)&gt;{{7*7}}.png" in html
    assert "&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;" in html

    report_id = _header(response, "x-report-id")
    again = api.http.get(f"/reports/{report_id}?format=html")
    assert again.status_code == 200
    assert _header(again, "content-security-policy")
    assert executable_content(again.body.decode()) == []
    assert _row(db_engine, report_id).file_names == [HOSTILE_NAME]


def test_saved_reports_are_listed_and_fetched(api, screenshot):
    created = json.loads(_post(api, [(SHOT, screenshot)], format="json").body)

    listed = api.http.get("/reports?limit=50")
    assert listed.status_code == 200
    assert created["id"] in [r["id"] for r in json.loads(listed.body)["reports"]]
    page = api.http.get("/reports?format=html")
    assert _header(page, "content-type").startswith("text/html")
    assert f'href="reports/{created["id"]}?format=html"' in page.body.decode()
    one = json.loads(api.http.get(f"/reports/{created['id']}").body)
    assert one["markdown"] == created["markdown"] and one["saved"] is True
    assert one["sections"] == created["sections"]

    assert api.http.get("/reports/not-a-uuid").status_code == 400
    missing = api.http.get(f"/reports/{uuid.uuid4()}")
    assert (missing.status_code, _error(missing)["code"]) == (404, "report_not_found")
    assert api.http.get("/reports?limit=0").status_code == 400


def test_large_screenshot_is_scaled_to_fit_the_request(api, env, standin, screenshot):
    env.set(GROQ_MAX_REQUEST_BYTES="200000")
    response = _post(api, [(SHOT, screenshot)], format="json", save="false")

    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert body["images"][0]["resized"] is True
    assert any("Scaled down" in notice for notice in body["notices"])
    ((mime, sent),) = standin.received[0].images
    assert mime == "image/jpeg" and len(sent) < 150_000
    assert standin.received[0].size <= 200_000
    assert Image.open(io.BytesIO(sent)).size == (body["images"][0]["width"],
                                                 body["images"][0]["height"])


def test_images_past_the_model_limit_are_left_out_and_said_so(api, env, standin, screenshot):
    env.set(GROQ_MAX_IMAGES="2")
    files = [("one.png", screenshot), ("two.png", screenshot), ("three.png", screenshot)]
    response = _post(api, files, format="json", save="false")

    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert len(standin.received[0].images) == 2
    assert body["file_names"] == ["one.png", "two.png"]
    assert "3 images were sent" in body["notices"][0]
    assert "three.png" in body["notices"][0]


@pytest.mark.parametrize(("settings", "status", "code"), [
    ({"GROQ_MAX_IMAGE_BYTES": "100000"}, 413, "image_too_large"),
    ({"GROQ_MAX_TOTAL_IMAGE_BYTES": "400000"}, 413, "images_too_large"),
    ({"MAX_DIRECT_UPLOAD_BYTES": "100000"}, 413, "request_too_large"),
])
def test_size_limits(api, env, standin, screenshot, settings, status, code):
    env.set(**settings)
    response = _post(api, [("a.png", screenshot), ("b.png", screenshot)], format="json")
    assert (response.status_code, _error(response)["code"]) == (status, code)
    assert standin.received == []


@pytest.mark.parametrize("data", [b"GIF89a\x01\x00\x01\x00", b"<svg onload=alert(1)>",
                                  b"%PDF-1.7 ..."])
def test_type_is_judged_by_content(api, standin, data):
    response = _post(api, [("dashboard.png", data)], format="json")
    assert (response.status_code, _error(response)["code"]) == (415, "unsupported_image_type")
    assert standin.received == []


def test_bad_requests(api, screenshot):
    assert _post(api, [], prompt="x").status_code == 400
    assert _post(api, [(SHOT, screenshot)], format="pdf").status_code == 400
    response = api.http.post("/analyze-dashboard", headers={"Content-Type": "application/json"},
                             body=json.dumps({"keys": ["raw/x.parquet"]}))
    assert (response.status_code, _error(response)["code"]) == (400, "invalid_key")


@pytest.mark.parametrize(("mode", "status", "code", "words"), [
    ("401", 502, "groq_auth_failed", "GROQ_API_KEY"),
    ("404", 503, "groq_model_unavailable", MODEL),
    ("decommissioned", 503, "groq_model_unavailable", "GROQ_MODEL"),
    ("413", 422, "groq_request_too_large", "fewer or smaller"),
    ("500", 502, "groq_error", "Try again"),
    ("503", 503, "groq_unavailable", "Try again"),
    ("empty", 502, "groq_empty_answer", "without any text"),
])
def test_groq_failures_get_clear_answers(api, standin, screenshot, mode, status, code, words):
    standin.mode = mode
    response = _post(api, [(SHOT, screenshot)], format="html")
    assert response.status_code == status, response.body
    error = _error(response)
    assert error["code"] == code and words in error["message"]
    assert KEY not in response.body.decode()


def test_server_errors_are_retried_a_bounded_number_of_times(api, standin, screenshot):
    standin.mode = "500"
    assert _post(api, [(SHOT, screenshot)]).status_code == 502
    assert len(standin.received) == 2  # GROQ_MAX_RETRIES=1


def test_rejected_key_never_leaks(api, env, standin, screenshot, caplog):
    secret = "gsk_wrong_key_do_not_print_9876"
    env.set(GROQ_API_KEY=secret)
    with caplog.at_level(logging.DEBUG):
        response = _post(api, [(SHOT, screenshot)], format="json")
    assert (response.status_code, _error(response)["code"]) == (502, "groq_auth_failed")
    assert standin.received[0].authorization == f"Bearer {secret}"
    assert secret not in response.body.decode()
    assert secret not in caplog.text
    assert secret not in json.dumps(dict(response.headers))


def test_unknown_model_is_503_naming_it(api, env, standin, screenshot):
    env.set(GROQ_MODEL="llama-3.2-90b-vision-preview")
    response = _post(api, [(SHOT, screenshot)], format="json")
    assert response.status_code == 503
    assert "llama-3.2-90b-vision-preview" in _error(response)["message"]


def test_missing_key_is_503_naming_the_variable(api, env, standin, screenshot):
    env.set(GROQ_API_KEY=None)
    response = _post(api, [(SHOT, screenshot)], format="json")
    assert (response.status_code, _error(response)["code"]) == (503, "groq_not_configured")
    assert "GROQ_API_KEY" in _error(response)["message"]
    assert standin.received == []


def test_429_is_retried_then_succeeds(api, standin, screenshot):
    standin.queue("429")
    response = _post(api, [(SHOT, screenshot)], format="json", save="false")
    assert response.status_code == 200
    assert len(standin.received) == 2


def test_429_after_the_retries_is_429_with_retry_after(api, standin, screenshot):
    standin.mode = "429"
    response = _post(api, [(SHOT, screenshot)], format="json")
    assert (response.status_code, _error(response)["code"]) == (429, "groq_rate_limited")
    assert _header(response, "retry-after") == "1"
    assert len(standin.received) == 2


def test_429_with_a_long_wait_is_passed_on_at_once(api, standin, screenshot):
    standin.mode, standin.retry_after = "429", "120"
    response = _post(api, [(SHOT, screenshot)], format="json")
    assert response.status_code == 429
    assert _header(response, "retry-after") == "120"
    assert len(standin.received) == 1


def test_slow_groq_is_504(api, env, standin, screenshot):
    env.set(GROQ_TIMEOUT_SECONDS="0.5")
    standin.mode, standin.slow_seconds = "slow", 5
    response = _post(api, [(SHOT, screenshot)], format="json")
    assert (response.status_code, _error(response)["code"]) == (504, "groq_timeout")
    assert "GROQ_TIMEOUT_SECONDS" in _error(response)["message"]


def test_unreachable_groq_is_502(api, env, screenshot):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env.set(GROQ_BASE_URL=f"http://127.0.0.1:{closed_port}")
    response = _post(api, [(SHOT, screenshot)], format="json")
    assert (response.status_code, _error(response)["code"]) == (502, "groq_unreachable")
