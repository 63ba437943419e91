"""POST /analyze-dashboard naming images already in S3, with moto standing
in for S3 (no LocalStack needed) and the stand-in Groq server."""

from __future__ import annotations

import json

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from infra import aws
from infra.settings import get_settings
from tests.groq_standin import KEY, GroqStandIn

pytestmark = pytest.mark.integration

BUCKET = "analysis-keys-test"
SHOT = "powerbi_nyc_taxi_dashboard.png"


@pytest.fixture
def standin():
    with GroqStandIn() as server:
        yield server


@pytest.fixture
def s3(monkeypatch, database_url, standin):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                        "S3_BUCKET": BUCKET, "DATABASE_URL": database_url,
                        "GROQ_API_KEY": KEY, "GROQ_BASE_URL": standin.base_url,
                        "GROQ_MAX_RETRIES": "0", "GROQ_MAX_IMAGES": "2"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    aws._client.cache_clear()  # clients made before moto started would miss it
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    aws._client.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
def api(s3):
    import app

    with Client(app.app) as client:
        yield client


def _upload(api, s3, data: bytes, filename: str = SHOT) -> str:
    """Ask POST /uploads for a dashboard-image key, then put the bytes there."""
    response = api.http.post("/uploads", headers={"Content-Type": "application/json"},
                             body=json.dumps({"filename": filename, "size": len(data),
                                              "kind": "dashboard_image"}))
    assert response.status_code == 201, response.body
    key = json.loads(response.body)["key"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def _analyse(api, body: dict):
    return api.http.post("/analyze-dashboard", headers={"Content-Type": "application/json"},
                         body=json.dumps(body))


def test_uploaded_screenshot_is_analysed_by_key(api, s3, standin, fixtures_dir):
    data = (fixtures_dir / SHOT).read_bytes()
    key = _upload(api, s3, data)
    assert key.startswith("dashboards/")

    response = _analyse(api, {"keys": [key], "prompt": "Busiest hour?", "format": "json"})

    assert response.status_code == 201, response.body
    body = json.loads(response.body)
    assert body["file_names"] == [SHOT] and body["saved"] is True
    assert standin.received[0].images == [("image/png", data)]
    assert standin.received[0].prompt.endswith("Busiest hour?")


def test_keys_past_the_model_limit_are_not_even_read(api, s3, standin, fixtures_dir):
    data = (fixtures_dir / SHOT).read_bytes()
    keys = [_upload(api, s3, data, f"shot{i}.png") for i in range(2)]
    response = _analyse(api, {"keys": [*keys, "dashboards/never/uploaded.png"],
                              "format": "json", "save": False})

    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert len(standin.received[0].images) == 2
    assert "uploaded.png" in body["notices"][0]


def test_missing_key_is_404(api, s3, standin):
    response = _analyse(api, {"keys": ["dashboards/nothing/here.png"]})
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == "image_not_found"
    assert standin.received == []


def test_a_text_file_under_the_prefix_is_415(api, s3, standin):
    s3.put_object(Bucket=BUCKET, Key="dashboards/x/fake.png", Body=b"just text")
    response = _analyse(api, {"keys": ["dashboards/x/fake.png"]})
    assert response.status_code == 415
