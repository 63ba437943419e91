"""The client's ``analyze`` command against the app served over real HTTP on
127.0.0.1 (Chalice's local server), the stand-in Groq server and Postgres."""

from __future__ import annotations

import argparse
import threading

import pytest
from chalice.config import Config
from chalice.local import LocalDevServer

from infra.settings import get_settings
from scripts import client_analyze
from tests.groq_standin import KEY, GroqStandIn, executable_content

pytestmark = pytest.mark.integration


@pytest.fixture
def standin():
    with GroqStandIn() as server:
        yield server


@pytest.fixture
def api_url(monkeypatch, database_url, standin):
    import app

    for name, value in {"DATABASE_URL": database_url, "GROQ_API_KEY": KEY,
                        "GROQ_BASE_URL": standin.base_url, "GROQ_MAX_RETRIES": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GROQ_MODEL", raising=False)
    get_settings.cache_clear()
    local = LocalDevServer(app.app, Config.create(), "127.0.0.1", 0)
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{local.server.server_address[1]}"
    local.server.shutdown()
    local.server.server_close()
    thread.join(timeout=5)
    get_settings.cache_clear()


def _args(api_url: str, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url")
    client_analyze.add_arguments(parser)
    return parser.parse_args(["--api-url", api_url, *argv])


def test_analyze_writes_the_html_report(api_url, standin, fixtures_dir, tmp_path, capsys):
    shot = fixtures_dir / "powerbi_nyc_taxi_dashboard.png"
    out = tmp_path / "reports" / "report.html"

    code = client_analyze.run(_args(api_url, str(shot), "--out", str(out),
                                    "--prompt", "Which zone leads?"))

    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "saved as report" in printed
    html = out.read_text()
    assert "<h2>Key figures</h2>" in html
    assert executable_content(html) == []
    assert standin.received[0].images == [("image/png", shot.read_bytes())]
    assert standin.received[0].prompt.endswith("Which zone leads?")


def test_analyze_reports_a_refusal(api_url, standin, fixtures_dir, tmp_path, capsys):
    standin.mode, standin.retry_after = "429", "30"
    out = tmp_path / "report.html"

    code = client_analyze.run(_args(api_url, str(fixtures_dir / "powerbi_nyc_taxi_dashboard.png"),
                                    "--out", str(out), "--no-save"))

    assert code == 2
    err = capsys.readouterr().err
    assert "groq_rate_limited" in err and "Try again in 30 s" in err
    assert not out.exists()


def test_analyze_refuses_a_missing_file(api_url, tmp_path, capsys):
    assert client_analyze.run(_args(api_url, str(tmp_path / "nope.png"))) == 1
    assert "not a file" in capsys.readouterr().err
