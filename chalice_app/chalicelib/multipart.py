"""multipart/form-data for Chalice, which has no parser of its own.

Uses python-multipart's push parser on the raw body. The body must have been
declared binary (``app.api.binary_types``) so API Gateway passes it intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from chalicelib.http import ApiError


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)


def parse(content_type: str | None, body: bytes, *, max_bytes: int) -> list[Part]:
    """The parts of a form; 413 past ``max_bytes`` of body, 400 if it is not
    a well-formed multipart form."""
    if len(body) > max_bytes:
        raise ApiError(413, "request_too_large",
                       f"The request body is {len(body)} bytes; this endpoint takes at most "
                       f"{max_bytes} bytes. Upload large files through POST /uploads.")
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(400, "invalid_form",
                       "Send the request as multipart/form-data with a boundary.")
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disposition.get(b"filename")
        ctype = headers.get(b"content-type")
        parts.append(Part(
            name=name,
            filename=raw_filename.decode("utf-8", "replace") if raw_filename else None,
            content_type=ctype.decode("latin-1") if ctype else None,
        ))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data.extend(data[start:end])

    parser = MultipartParser(boundary, callbacks={
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
    })
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several types
        raise ApiError(400, "invalid_form",
                       f"The multipart form is malformed ({exc.__class__.__name__}).") from None
    return parts
