"""What a POST /analyze-dashboard asks for, from a multipart form or a JSON
body, turned into one typed value. Pure, except ``load_keys``, which reads
the named images from S3 through the client it is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.analysis.images import ImageInput
from chalicelib.http import ApiError
from chalicelib.multipart import Part

DEFAULT_PROMPT = (
    "Describe what this dashboard of New York City taxi trips shows: the headline "
    "figures, the trends over time, the differences between boroughs, zones or "
    "payment types, anything that looks anomalous, and what to look into next."
)
MAX_PROMPT_CHARS = 4000
FORMATS = ("html", "json")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class AnalysisRequest:
    prompt: str
    format: str  # "html" or "json"
    save: bool
    images: list[ImageInput]  # from a form; empty when keys name them
    keys: list[str]  # S3 keys under the dashboards prefix; empty for a form


def from_form(parts: list[Part], *, query: dict[str, str], accept: str) -> AnalysisRequest:
    fields: dict[str, str] = {}
    images: list[ImageInput] = []
    for part in parts:
        if part.filename is not None and part.name in ("files", "file"):
            images.append(ImageInput(display_name(part.filename), bytes(part.data)))
        elif part.filename is None and part.name in ("prompt", "format", "save"):
            try:
                fields[part.name] = bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "invalid_form",
                               f"The form field '{part.name}' is not UTF-8 text.") from None
    if not images:
        raise ApiError(400, "missing_images",
                       "Send the screenshots as files in form field 'files' (one or more).")
    return AnalysisRequest(
        prompt=parse_prompt(fields.get("prompt")),
        format=parse_format(fields.get("format") or query.get("format"), accept),
        save=parse_save(fields.get("save")),
        images=images, keys=[])


def from_json(body: dict[str, Any], *, query: dict[str, str], accept: str,
              prefix: str) -> AnalysisRequest:
    keys = body.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise ApiError(400, "invalid_keys",
                       "Give 'keys' as a non-empty list of object keys that POST /uploads "
                       f"returned for kind 'dashboard_image' (they start with '{prefix}').")
    for key in keys:
        if not key.startswith(prefix) or ".." in key.split("/") or len(key) > 1024:
            raise ApiError(400, "invalid_key",
                           f"'{_short(key)}' is not a dashboard image key; keys must start "
                           f"with '{prefix}', as POST /uploads with kind 'dashboard_image' "
                           "returns them.")
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise ApiError(400, "invalid_prompt", "'prompt' must be a string.")
    fmt = body.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise ApiError(400, "invalid_format", "'format' must be 'html' or 'json'.")
    return AnalysisRequest(
        prompt=parse_prompt(prompt),
        format=parse_format(fmt or query.get("format"), accept),
        save=parse_save(body.get("save")),
        images=[], keys=list(dict.fromkeys(keys)))


def parse_prompt(raw: str | None) -> str:
    prompt = (raw or "").strip()
    if not prompt:
        return DEFAULT_PROMPT
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(400, "prompt_too_long",
                       f"The prompt has {len(prompt)} characters; the limit is "
                       f"{MAX_PROMPT_CHARS}.")
    return prompt


def parse_format(raw: str | None, accept: str = "") -> str:
    """An explicit 'html' or 'json' wins; otherwise HTML for a client that
    asks for it (a browser), JSON for everyone else."""
    if raw is None or not raw.strip():
        return "html" if "text/html" in (accept or "") else "json"
    value = raw.strip().lower()
    if value not in FORMATS:
        raise ApiError(400, "invalid_format",
                       f"'format' must be 'html' or 'json', not '{_short(raw, 20)}'.")
    return value


def parse_save(raw: Any) -> bool:
    if raw is None or raw == "":
        return True
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise ApiError(400, "invalid_save", "'save' must be true or false.")


def skipped_notice(sent: int, limit: int, skipped: list[str]) -> str:
    return (f"{sent} images were sent but the model takes at most {limit} per request "
            f"(GROQ_MAX_IMAGES), so only the first {limit} were analysed. Not analysed: "
            f"{', '.join(_short(n, 60) for n in skipped)}. Send them in another request.")


def load_keys(s3, bucket: str, keys: list[str], *, max_image_bytes: int,
              max_total_bytes: int) -> list[ImageInput]:
    """The images behind ``keys``; a size past a limit is refused from the
    object's metadata, before its bytes are read."""
    images: list[ImageInput] = []
    total = 0
    for key in keys:
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ApiError(404, "image_not_found",
                               f"There is no uploaded image '{_short(key)}'. Upload it with "
                               "the URL POST /uploads returned, then try again.") from None
            raise ApiError(502, "storage_error",
                           f"Reading '{_short(key)}' from S3 failed ({code or 'error'}). "
                           "Try again later.") from None
        length = int(obj.get("ContentLength") or 0)
        total += length
        if length > max_image_bytes or total > max_total_bytes:
            obj["Body"].close()
            limit, setting = ((max_image_bytes, "GROQ_MAX_IMAGE_BYTES")
                              if length > max_image_bytes
                              else (max_total_bytes, "GROQ_MAX_TOTAL_IMAGE_BYTES"))
            raise ApiError(413, "image_too_large",
                           f"'{_short(key)}' takes the images past {limit} bytes ({setting}). "
                           "Send fewer or smaller images.")
        images.append(ImageInput(display_name(key), obj["Body"].read()))
    return images


def display_name(filename: str) -> str:
    """The last part of a client's file name or of a key, for display only."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return _short(base, 200) or "image"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
