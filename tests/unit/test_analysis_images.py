"""Image checks and shrinking, on images made in memory."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from chalicelib.analysis.images import (
    ImageInput,
    byte_budget,
    check_sizes,
    prepare,
    sniff,
)
from chalicelib.http import ApiError

pytestmark = pytest.mark.unit


def _image(fmt: str, size=(64, 48), mode="RGB", noisy=False) -> bytes:
    picture = Image.new(mode, size, (30, 90, 200) if mode == "RGB" else (30, 90, 200, 128))
    if noisy:
        rng = random.Random(7)
        picture = Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))
    out = io.BytesIO()
    picture.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                           ("WEBP", "image/webp")])
def test_sniff_knows_the_three_formats_by_content(fmt, mime):
    assert sniff(_image(fmt)) == mime


@pytest.mark.parametrize("data", [_image("GIF"), b"%PDF-1.7", b"not an image", b"",
                                  b"RIFF\x00\x00\x00\x00WAVE"])
def test_sniff_refuses_everything_else(data):
    assert sniff(data) is None


def test_name_does_not_decide_the_type():
    with pytest.raises(ApiError) as caught:
        prepare(ImageInput("dashboard.png", b"<html>hello</html>"), budget_bytes=10**6,
                max_pixels=10**8)
    assert caught.value.status == 415
    assert "by its content" in caught.value.message


def test_a_png_named_jpg_is_accepted_as_png():
    prepared = prepare(ImageInput("shot.jpg", _image("PNG")), budget_bytes=10**6,
                       max_pixels=10**8)
    assert prepared.mime == "image/png"
    assert prepared.data_url.startswith("data:image/png;base64,")


def test_truncated_image_is_422():
    data = _image("PNG", size=(200, 200), noisy=True)[:300]
    with pytest.raises(ApiError) as caught:
        prepare(ImageInput("cut.png", data), budget_bytes=10**6, max_pixels=10**8)
    assert caught.value.status == 422
    assert caught.value.code == "unreadable_image"


def test_small_image_is_sent_unchanged():
    data = _image("JPEG")
    prepared = prepare(ImageInput("a.jpg", data), budget_bytes=len(data), max_pixels=10**8)
    assert prepared.data == data
    assert not prepared.resized
    assert (prepared.width, prepared.height) == (64, 48)


def test_large_image_is_scaled_and_reencoded_within_the_budget():
    data = _image("PNG", size=(1200, 800), noisy=True)
    budget = 120_000
    assert len(data) > budget
    prepared = prepare(ImageInput("big.png", data), budget_bytes=budget, max_pixels=10**8)
    assert prepared.resized
    assert prepared.mime == "image/jpeg"
    assert len(prepared.data) <= budget
    assert prepared.original_bytes == len(data)
    assert Image.open(io.BytesIO(prepared.data)).size == (prepared.width, prepared.height)


def test_transparent_png_is_flattened():
    data = _image("PNG", size=(400, 300), mode="RGBA")
    prepared = prepare(ImageInput("alpha.png", data), budget_bytes=10**6, max_pixels=60_000)
    assert prepared.resized
    assert prepared.width * prepared.height <= 60_000
    assert Image.open(io.BytesIO(prepared.data)).mode == "RGB"


def test_too_many_pixels_for_the_model_are_scaled_down():
    data = _image("PNG", size=(1000, 1000))
    prepared = prepare(ImageInput("wide.png", data), budget_bytes=10**7, max_pixels=250_000)
    assert prepared.resized
    assert prepared.width * prepared.height <= 250_000


def test_an_impossible_budget_is_422():
    data = _image("PNG", size=(800, 600), noisy=True)
    with pytest.raises(ApiError) as caught:
        prepare(ImageInput("x.png", data), budget_bytes=500, max_pixels=10**8)
    assert caught.value.status == 422
    assert caught.value.code == "image_cannot_fit"


def test_budget_leaves_room_for_base64_and_the_prompt():
    budget = byte_budget(4 * 1024 * 1024, "prompt", 2)
    assert 2 * (budget * 4 / 3) < 4 * 1024 * 1024 - 32 * 1024
    assert byte_budget(4 * 1024 * 1024, "p", 1) > budget


def test_size_limits_are_413_and_name_the_setting():
    images = [ImageInput("a.png", b"x" * 10), ImageInput("b.png", b"x" * 10)]
    with pytest.raises(ApiError) as caught:
        check_sizes(images, max_image_bytes=9, max_total_bytes=100)
    assert caught.value.status == 413
    assert "GROQ_MAX_IMAGE_BYTES" in caught.value.message
    with pytest.raises(ApiError) as caught:
        check_sizes(images, max_image_bytes=10, max_total_bytes=15)
    assert caught.value.status == 413
    assert "GROQ_MAX_TOTAL_IMAGE_BYTES" in caught.value.message
    check_sizes(images, max_image_bytes=10, max_total_bytes=20)


def test_no_images_is_400():
    with pytest.raises(ApiError) as caught:
        check_sizes([], max_image_bytes=1, max_total_bytes=1)
    assert caught.value.status == 400
