"""Reports as HTML and as structured JSON.

Pure apart from reading the templates in ``chalicelib/templates/`` once. The
model's markdown is untrusted: it is rendered without raw HTML, sanitised
against an allow-list, and handed to Jinja2 (autoescaping on) as a value,
never compiled as a template. File names and prompts are escaped like any
other value.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

#: Sent with every HTML answer. Nothing may run, load or submit; the only
#: styles are the template's own inline ones, and images only as data URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody",
    "tr", "th", "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
_URL_SCHEMES = {"http", "https", "mailto"}


@functools.cache
def _markdown() -> MarkdownIt:
    # "html": False turns raw HTML in the markdown into visible text.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def markdown_to_html(markdown: str) -> Markup:
    """Safe HTML for untrusted markdown: no script, no event handler, no
    style, no link other than http, https or mailto."""
    return sanitise(_markdown().render(markdown))


def sanitise(html: str) -> Markup:
    """Only the allow-listed tags and attributes of ``html``; the second line
    of defence behind a markdown renderer that already escapes raw HTML."""
    return Markup(nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES,
                            clean_content_tags={"script", "style"}, strip_comments=True,
                            link_rel="noopener noreferrer nofollow"))


def sections(markdown: str) -> list[dict[str, Any]]:
    """The markdown split at its top-level headings. Text before the first
    heading becomes a section with an empty heading and level 0."""
    lines = markdown.splitlines()
    # (first line, line after the heading, level, text); a setext heading
    # takes two lines, its text and its underline.
    starts: list[tuple[int, int, int, str]] = []
    tokens = _markdown().parse(markdown)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map:
            starts.append((token.map[0], token.map[1], int(token.tag[1]),
                           _plain(tokens[index + 1])))
    found: list[dict[str, Any]] = []
    first = starts[0][0] if starts else len(lines)
    preamble = "\n".join(lines[:first]).strip()
    if preamble:
        found.append({"heading": "", "level": 0, "markdown": preamble})
    for position, (_, body_start, level, heading) in enumerate(starts):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
        body = "\n".join(lines[body_start:end]).strip()
        found.append({"heading": heading, "level": level, "markdown": body})
    return found


def structured(markdown: str, *, images: list[dict], notices: list[str]) -> dict[str, Any]:
    """What is saved in ``dashboard_analysis_reports.structured``."""
    parts = sections(markdown)
    title = next((s["heading"] for s in parts if s["level"] == 1), "")
    return {"title": title, "sections": parts, "images": images, "notices": notices}


def report_html(report: dict[str, Any]) -> str:
    """One report as a page. ``report`` is what ``report_view`` returns."""
    return _environment().get_template("analysis_report.html").render(
        report=report, body=markdown_to_html(report["markdown"]))


def report_list_html(reports: list[dict[str, Any]]) -> str:
    return _environment().get_template("analysis_reports.html").render(reports=reports)


def report_view(*, report_id: str | None, created_at: str | None, file_names: list[str],
                prompt: str, model: str, markdown: str, structure: dict[str, Any],
                usage: dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of a report, the same for a fresh and a saved one."""
    return {
        "id": report_id,
        "saved": report_id is not None,
        "created_at": created_at,
        "file_names": file_names,
        "prompt": prompt,
        "model": model,
        "title": structure.get("title", ""),
        "images": structure.get("images", []),
        "notices": structure.get("notices", []),
        "sections": structure.get("sections", []),
        "markdown": markdown,
        "usage": usage,
    }


def _plain(inline) -> str:
    pieces = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
    return " ".join("".join(pieces).split())

