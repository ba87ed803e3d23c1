"""Thinning a progressive JPEG to the scans a 1/8-scale decode reads must not change a pixel."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paktum_hasher.jpeg_scans import dc_scans_only
from tests.imagefiles import encode, picture

REAL_JPEGS = sorted((Path(__file__).parent.parent / "fixtures" / "real" / "jpeg").glob("*.jpg"))


def eighth_scale(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.draft(None, (image.width // 8, image.height // 8))
    assert image.decoderconfig[0] == 8
    image.load()
    return np.asarray(image)


def progressive(data: bytes) -> bool:
    return bool(Image.open(io.BytesIO(data)).info.get("progressive"))


@pytest.mark.parametrize("path", [p for p in REAL_JPEGS if progressive(p.read_bytes())], ids=lambda p: p.name)
def test_real_progressive_files_decode_to_the_same_pixels(path: Path) -> None:
    data = path.read_bytes()
    thinned = dc_scans_only(data)
    assert thinned is not None and len(thinned) < len(data)
    assert np.array_equal(eighth_scale(thinned), eighth_scale(data))


@pytest.mark.parametrize(("subsampling", "mode"), [(0, "RGB"), (1, "RGB"), (2, "RGB"), (-1, "L"), (-1, "CMYK")])
def test_every_subsampling_and_mode_decodes_to_the_same_pixels(subsampling: int, mode: str) -> None:
    image = picture(21, (640, 480)).convert(mode)
    options: dict[str, object] = {"progressive": True, "quality": 90}
    if subsampling >= 0:
        options["subsampling"] = subsampling
    data = encode(image, "JPEG", **options)
    thinned = dc_scans_only(data)
    assert thinned is not None and len(thinned) < len(data)
    assert np.array_equal(eighth_scale(thinned), eighth_scale(data))


def test_baseline_jpeg_is_left_alone() -> None:
    assert dc_scans_only(encode(picture(1), "JPEG", quality=90)) is None


def test_truncated_file_is_left_alone_so_the_decoder_refuses_it() -> None:
    data = encode(picture(2), "JPEG", quality=90, progressive=True)
    for cut in (len(data) - 2, len(data) * 2 // 3, len(data) // 3, 40):
        assert dc_scans_only(data[:cut]) is None, cut


@pytest.mark.parametrize(
    "data", [b"", b"\xff\xd8", b"\xff\xd8\xff\xc2\x00", b"not a jpeg at all", encode(picture(3), "PNG")]
)
def test_anything_else_is_left_alone(data: bytes) -> None:
    assert dc_scans_only(data) is None
