"""decode_image against hostile files (tests/hostile.py): each bomb is refused with its reason before it costs
its memory or its CPU, and an image within the budgets still decodes."""

import io

import pytest
from PIL import Image

from paktum_common.errors import BadImageError
from paktum_hasher.decode import decode_bytes, decode_image
from tests.hostile import KINDS, hostile, png_bomb
from tests.imagefiles import encode

MAX_PIXELS = 120_000_000
BUDGET_MIB = 32


@pytest.mark.parametrize("name", [name for name, (_, refusal) in KINDS.items() if refusal])
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_every_bomb_is_refused_with_its_reason(name: str, mode: str) -> None:
    bomb = hostile(name)
    with pytest.raises(BadImageError) as refused:
        decode_image(bomb.data, MAX_PIXELS, 300, mode, memory_mib=BUDGET_MIB)  # type: ignore[arg-type]
    assert bomb.refusal in str(refused.value)
    if bomb.refusal.startswith("too large"):
        assert str(refused.value) == f"too large to decode in {BUDGET_MIB} MiB (PAKTUM_DECODE_MEMORY_MIB)"


@pytest.mark.parametrize("name", [name for name, (_, refusal) in KINDS.items() if not refusal])
def test_an_animation_of_many_frames_is_its_first_frame(name: str) -> None:
    decoded = decode_image(hostile(name).data, MAX_PIXELS, 300, "fast", memory_mib=BUDGET_MIB)
    assert (decoded.width, decoded.height) == (64, 64)


@pytest.mark.parametrize(
    ("mode", "bytes_per_pixel"), [("L", 1), ("P", 1), ("I;16", 2), ("RGB", 4), ("RGBA", 4), ("LA", 4), ("F", 4)]
)
def test_the_estimate_counts_bytes_of_the_mode_not_pixels(mode: str, bytes_per_pixel: int) -> None:
    image = Image.new(mode, (1000, 1000))
    small = Image.new(mode, (1000, 500))
    # Half the pixels: the estimate drops by half the picture's bytes and half the greyscale copies.
    per_pixel = (decode_bytes(image, "PNG", image.size) - decode_bytes(small, "PNG", small.size)) / 500_000
    assert per_pixel == bytes_per_pixel + 3


def test_a_webp_counts_what_libwebp_holds_besides_the_picture() -> None:
    image = Image.open(io.BytesIO(encode(Image.new("RGBA", (100, 100)), "WEBP", lossless=True)))
    png = Image.open(io.BytesIO(encode(Image.new("RGBA", (100, 100)), "PNG")))
    assert decode_bytes(image, "WEBP", image.size) - decode_bytes(png, "PNG", png.size) == 12 * 100 * 100


def test_a_large_image_within_the_budget_still_decodes() -> None:
    data = png_bomb(1000, 1000)  # transparent RGBA: 4 MB decoded, well under 32 MiB with every copy
    decoded = decode_image(data, MAX_PIXELS, 300, "exact", memory_mib=BUDGET_MIB)
    assert (decoded.width, decoded.height) == (1000, 1000)
