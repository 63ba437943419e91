"""Images for the vision model: recognised by their bytes, checked against the
size limits, and shrunk with Pillow when they would not fit Groq's request.

Pure: works on bytes in memory and does no I/O.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from chalicelib.http import ApiError

logger = logging.getLogger(__name__)

#: Bytes of the request that are not images: JSON framing, the prompt, the
#: instructions. Taken off the request limit before it is split among images.
REQUEST_OVERHEAD_BYTES = 32 * 1024
#: Images whose decoded size would pass this many pixels are refused before
#: decoding, so a small compressed file cannot claim gigabytes of memory.
MAX_DECODE_PIXELS = 120_000_000
#: Screenshots of dashboards stop being legible below this width or height.
MIN_SIDE = 320
_JPEG_QUALITIES = (85, 75, 65)


@dataclass(frozen=True)
class ImageInput:
    """An image as the client sent it."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PreparedImage:
    """An image ready for the model, with what was done to it."""

    name: str
    mime: str
    data: bytes
    original_bytes: int
    width: int
    height: int
    resized: bool

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def summary(self) -> dict:
        return {"name": self.name, "type": self.mime, "bytes": self.original_bytes,
                "sent_bytes": len(self.data), "width": self.width, "height": self.height,
                "resized": self.resized}


def sniff(data: bytes) -> str | None:
    """The image type by magic bytes: PNG, JPEG or WebP; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_sizes(images: list[ImageInput], *, max_image_bytes: int, max_total_bytes: int) -> None:
    """413 for an image or a set of images above the limits; 400 for none."""
    if not images:
        raise ApiError(400, "missing_images",
                       "Send at least one image: form field 'files' (multipart) or "
                       "'keys' (JSON) naming images uploaded through POST /uploads.")
    for image in images:
        if not image.data:
            raise ApiError(400, "empty_image", f"The image '{_short(image.name)}' is empty.")
        if len(image.data) > max_image_bytes:
            raise ApiError(413, "image_too_large",
                           f"The image '{_short(image.name)}' is {len(image.data)} bytes; "
                           f"each image may be at most {max_image_bytes} bytes "
                           "(GROQ_MAX_IMAGE_BYTES). Send a smaller screenshot.")
    total = sum(len(image.data) for image in images)
    if total > max_total_bytes:
        raise ApiError(413, "images_too_large",
                       f"The images add up to {total} bytes; one request may carry at most "
                       f"{max_total_bytes} bytes (GROQ_MAX_TOTAL_IMAGE_BYTES). Send fewer "
                       "or smaller images.")


def byte_budget(max_request_bytes: int, prompt: str, count: int) -> int:
    """Raw bytes one of ``count`` images may take so that the base64 request,
    prompt included, stays within ``max_request_bytes``."""
    free = max_request_bytes - REQUEST_OVERHEAD_BYTES - len(prompt.encode("utf-8"))
    base64_share = free // max(count, 1)
    return max(base64_share * 3 // 4 - 64, 0)


def prepare(image: ImageInput, *, budget_bytes: int, max_pixels: int) -> PreparedImage:
    """The image as the model will get it: unchanged when it fits, otherwise
    scaled down and re-encoded as JPEG until it does. 415 when it is not a
    PNG, JPEG or WebP, 422 when it cannot be read or made small enough."""
    mime = sniff(image.data)
    if mime is None:
        raise ApiError(415, "unsupported_image_type",
                       f"'{_short(image.name)}' is not a PNG, JPEG or WebP image (judged by "
                       "its content, not its name). Send a screenshot in one of those formats.")
    picture = _open(image, mime)
    width, height = picture.size
    if len(image.data) <= budget_bytes and width * height <= max_pixels:
        return PreparedImage(image.name, mime, image.data, len(image.data), width, height,
                             resized=False)
    data, size = _shrink(picture, budget_bytes, max_pixels, image.name)
    logger.info("image %s shrunk from %d bytes (%dx%d) to %d bytes (%dx%d)",
                _short(image.name), len(image.data), width, height, len(data), *size)
    return PreparedImage(image.name, "image/jpeg", data, len(image.data), size[0], size[1],
                         resized=True)


def _open(image: ImageInput, mime: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(image.data))
            width, height = picture.size
            if width * height > MAX_DECODE_PIXELS:
                raise ApiError(422, "image_too_many_pixels",
                               f"'{_short(image.name)}' is {width}x{height} pixels; images "
                               f"may have at most {MAX_DECODE_PIXELS} pixels.")
            picture.load()
    except ApiError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(422, "unreadable_image",
                       f"'{_short(image.name)}' looks like {mime} but cannot be decoded; it "
                       "may be truncated or damaged.") from None
    return picture


def _shrink(picture: Image.Image, budget_bytes: int, max_pixels: int,
            name: str) -> tuple[bytes, tuple[int, int]]:
    rgb = _flatten(picture)
    width, height = rgb.size
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    # Shrinking for bytes stops at MIN_SIDE, or where the pixel cap put it.
    floor = min(MIN_SIDE, int(width * scale), int(height * scale))
    for _ in range(12):
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        if min(size) < max(floor, 1):
            break
        resized = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS)
        for quality in _JPEG_QUALITIES:
            data = _jpeg(resized, quality)
            if len(data) <= budget_bytes:
                return data, size
        scale *= max(0.5, min(0.9, math.sqrt(budget_bytes / len(data)) * 0.95))
    raise ApiError(422, "image_cannot_fit",
                   f"'{_short(name)}' cannot be made small enough for the model's request "
                   f"limit ({budget_bytes} bytes per image) while staying legible. Send "
                   "fewer images per request or a smaller screenshot.")


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB on a white background: JPEG has no alpha, and dashboards are light."""
    if picture.mode in ("RGBA", "LA", "P", "PA"):
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")


def _jpeg(picture: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
