"""Rendering: hostile markdown, file names and prompts come out inert."""

from __future__ import annotations

import pytest

from chalicelib.analysis.render import (
    CONTENT_SECURITY_POLICY,
    markdown_to_html,
    report_html,
    report_list_html,
    report_view,
    sanitise,
    sections,
    structured,
)
from tests.groq_standin import HOSTILE_MARKDOWN, NORMAL_MARKDOWN, executable_content

pytestmark = pytest.mark.unit

HOSTILE_NAME = '"><script>alert("name")</script><img src=x onerror=alert(1)>.png'
HOSTILE_PROMPT = "Summarise {{ 7*7 }} <script>alert('prompt')</script> {% raw %}"


def _view(markdown: str, name: str = "shot.png", prompt: str = "Describe it") -> dict:
    return report_view(report_id=None, created_at=None, file_names=[name], prompt=prompt,
                       model="m", markdown=markdown,
                       structure=structured(markdown, images=[], notices=[f"notice {name}"]),
                       usage={"total_tokens": 5})


def test_hostile_markdown_renders_inert():
    html = str(markdown_to_html(HOSTILE_MARKDOWN))
    assert executable_content(html) == []
    assert "{{ 7*7 }}" in html
    assert "{% for x in range(3) %}loop{% endfor %}" in html
    assert "evil.example/pixel.png" not in html or "<img" not in html


def test_sanitiser_strips_raw_hostile_html():
    raw = ('<p onclick="x()">a<script>alert(1)</script></p><a href="javascript:alert(1)">j</a>'
           '<a href=" JaVaScRiPt:alert(1)">k</a><img src=x onerror=alert(1)>'
           '<iframe src="https://e.example"></iframe><svg onload=alert(1)></svg>'
           '<style>*{}</style><a href="data:text/html,x">d</a><p style="x">s</p>'
           '<form action="https://e.example"><input></form><!-- c -->')
    html = str(sanitise(raw))
    assert executable_content(html) == []
    assert "alert" not in html and "<!--" not in html
    assert "<p>a</p>" in html


def test_whole_report_is_inert_and_shows_template_syntax_verbatim():
    html = report_html(_view(HOSTILE_MARKDOWN, HOSTILE_NAME, HOSTILE_PROMPT))
    assert executable_content(html) == []
    assert "{{ 7*7 }}" in html
    assert ">49<" not in html
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#39;prompt&#39;)&lt;/script&gt;" in html


def test_markdown_keeps_its_structure():
    html = str(markdown_to_html(NORMAL_MARKDOWN))
    assert "<h2>Key figures</h2>" in html
    assert "<strong>Trips:</strong>" in html
    assert "<table>" in html and "<td>Manhattan</td>" in html


def test_safe_links_survive_with_rel():
    html = str(markdown_to_html("[docs](https://example.org/a)"))
    assert 'href="https://example.org/a"' in html
    assert "noopener" in html


def test_sections_split_at_top_level_headings():
    found = sections("Intro line\n\n# Title\nabout\n\n## Key *figures*\n- a\n\n> # quoted\n"
                     "\nSetext\n------\nlast")
    assert [(s["heading"], s["level"]) for s in found] == [
        ("", 0), ("Title", 1), ("Key figures", 2), ("Setext", 2)]
    assert found[0]["markdown"] == "Intro line"
    assert found[2]["markdown"] == "- a\n\n> # quoted"
    assert found[3]["markdown"] == "last"


def test_structured_takes_the_first_h1_as_title():
    result = structured(NORMAL_MARKDOWN, images=[{"name": "a"}], notices=["n"])
    assert result["title"] == "NYC taxi trips, January 2025"
    assert [s["heading"] for s in result["sections"]][1:] == [
        "Key figures", "Trends", "Anomalies"]
    assert result["images"] == [{"name": "a"}] and result["notices"] == ["n"]


def test_list_page_escapes_names():
    view = _view(NORMAL_MARKDOWN, HOSTILE_NAME)
    view.update(id="7d3c3c4e-3d7e-4f0a-9b7e-2f1f5f9b1a11", created_at="2025-01-01")
    html = report_list_html([view])
    assert executable_content(html) == []
    assert 'href="reports/7d3c3c4e-3d7e-4f0a-9b7e-2f1f5f9b1a11?format=html"' in html


def test_csp_forbids_scripts():
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY
