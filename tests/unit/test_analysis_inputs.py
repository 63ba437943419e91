"""Turning forms and JSON bodies into an AnalysisRequest."""

from __future__ import annotations

import pytest

from chalicelib.analysis.inputs import (
    DEFAULT_PROMPT,
    display_name,
    from_form,
    from_json,
    parse_format,
    parse_prompt,
    parse_save,
    skipped_notice,
)
from chalicelib.http import ApiError
from chalicelib.multipart import Part

pytestmark = pytest.mark.unit


def _field(name: str, value: str) -> Part:
    return Part(name=name, filename=None, content_type=None, data=bytearray(value.encode()))


def _file(name: str, filename: str, data: bytes = b"\x89PNG\r\n\x1a\n") -> Part:
    return Part(name=name, filename=filename, content_type="image/png", data=bytearray(data))


def test_form_with_files_and_fields():
    request = from_form([_file("files", "C:\\shots\\a.png"), _file("files", "b.png"),
                         _field("prompt", "  What stands out?  "), _field("format", "JSON"),
                         _field("save", "false")], query={}, accept="")
    assert [i.name for i in request.images] == ["a.png", "b.png"]
    assert request.prompt == "What stands out?"
    assert request.format == "json"
    assert request.save is False
    assert request.keys == []


def test_form_defaults():
    request = from_form([_file("files", "a.png")], query={}, accept="text/html,*/*")
    assert request.prompt == DEFAULT_PROMPT
    assert request.format == "html"
    assert request.save is True


def test_form_without_files_is_400():
    with pytest.raises(ApiError) as caught:
        from_form([_field("prompt", "x")], query={}, accept="")
    assert (caught.value.status, caught.value.code) == (400, "missing_images")


def test_json_keys_must_sit_under_the_dashboards_prefix():
    ok = from_json({"keys": ["dashboards/1/a.png", "dashboards/1/a.png"], "save": False},
                   query={"format": "html"}, accept="", prefix="dashboards/")
    assert ok.keys == ["dashboards/1/a.png"]
    assert ok.format == "html" and ok.save is False
    for keys in (["raw/1/a.parquet"], ["dashboards/../raw/x"], [], "dashboards/a.png", [3]):
        with pytest.raises(ApiError) as caught:
            from_json({"keys": keys}, query={}, accept="", prefix="dashboards/")
        assert caught.value.status == 400


@pytest.mark.parametrize(("raw", "expected"), [(None, True), ("", True), (True, True),
                                               (False, False), ("no", False), ("ON", True)])
def test_save_values(raw, expected):
    assert parse_save(raw) is expected


def test_bad_values_are_400():
    for call in (lambda: parse_save("maybe"), lambda: parse_format("pdf"),
                 lambda: parse_prompt("x" * 5000)):
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.status == 400


def test_format_follows_accept_only_when_not_given():
    assert parse_format(None, "text/html") == "html"
    assert parse_format(None, "*/*") == "json"
    assert parse_format("json", "text/html") == "json"


def test_display_name_and_notice():
    assert display_name("dashboards/abc/shot.png") == "shot.png"
    assert display_name("") == "image"
    notice = skipped_notice(7, 5, ["f.png", "g.png"])
    assert "7 images" in notice and "at most 5" in notice and "f.png, g.png" in notice
