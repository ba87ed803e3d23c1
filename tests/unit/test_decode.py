"""decode_image on real and Pillow-drawn files: formats, hashes against imagehash, odd images, bad input."""

import io
import itertools
import random
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from paktum_common.errors import BadImageError
from paktum_common.phash import hamming, is_degenerate
from paktum_hasher.decode import decode_image
from paktum_hasher.phash import bits_to_int
from tests.imagefiles import bad_images, encode, picture

MAX_PIXELS = 50_000_000
REAL = Path(__file__).parent.parent / "fixtures" / "real"
REAL_JPEGS = sorted((REAL / "jpeg").glob("*.jpg"))
REAL_LINE_ART = sorted((REAL / "lineart").glob("*.png"))
# Thumbnail sizes that make the fast path decode the real JPEGs at 1/8, 1/4 and 1/2 scale.
DRAFT_THUMBNAILS = (40, 80, 160, 300)
# The most a fast-mode hash may differ from imagehash.phash of the full decode: the benchmark
# measured a mean of 0.2 bits and a maximum of 2 on real wallpapers (bench/README.md).
FAST_MAX_BITS = 4
FAST_MEAN_BITS = 1.5


def imagehash_of(data: bytes) -> int:
    """What anyone would compute: imagehash.phash of the file as Pillow opens it."""
    return bits_to_int(imagehash.phash(Image.open(io.BytesIO(data))).hash)


@pytest.mark.parametrize(
    ("fmt", "ext"), [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp")]
)
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_decodes_every_stored_format(fmt: str, ext: str, mode: str) -> None:
    image = picture(1, (500, 300))
    decoded = decode_image(encode(image, fmt), MAX_PIXELS, 300, mode)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height, decoded.ext) == (500, 300, ext)
    thumb = Image.open(io.BytesIO(decoded.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (300, 180)


@pytest.mark.parametrize("path", REAL_JPEGS, ids=lambda p: p.name)
@pytest.mark.parametrize("thumbnail", DRAFT_THUMBNAILS)
def test_exact_mode_matches_imagehash_bit_for_bit_on_real_jpegs(path: Path, thumbnail: int) -> None:
    data = path.read_bytes()
    assert decode_image(data, MAX_PIXELS, thumbnail, "exact").phash == imagehash_of(data)


def test_fast_mode_stays_within_the_measured_bound_on_real_jpegs() -> None:
    diffs = []
    for path, thumbnail in itertools.product(REAL_JPEGS, DRAFT_THUMBNAILS):
        data = path.read_bytes()
        decoded = decode_image(data, MAX_PIXELS, thumbnail, "fast")
        diffs.append(hamming(decoded.phash, imagehash_of(data)))
        # The size is the file's, not the reduced decode's.
        assert (decoded.width, decoded.height) == Image.open(path).size
    assert max(diffs) <= FAST_MAX_BITS, diffs
    assert sum(diffs) / len(diffs) <= FAST_MEAN_BITS, diffs


def test_fast_thumbnail_from_a_reduced_decode_looks_like_the_full_one() -> None:
    data = (REAL / "jpeg" / "mate-FreshFlower.jpg").read_bytes()  # progressive, 1600x1203: a 1/4 decode
    fast = Image.open(io.BytesIO(decode_image(data, MAX_PIXELS, 300, "fast").thumbnail))
    exact = Image.open(io.BytesIO(decode_image(data, MAX_PIXELS, 300, "exact").thumbnail))
    assert fast.size == exact.size == (300, 226)
    difference = np.abs(np.asarray(fast, dtype=np.int16) - np.asarray(exact, dtype=np.int16))
    assert difference.mean() < 3


@pytest.mark.parametrize(
    ("label", "image", "fmt"),
    [
        ("png-rgb", picture(7), "PNG"),
        ("png-grey", picture(8).convert("L"), "PNG"),
        ("png-palette", picture(9).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        ("gif", picture(10).convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        ("webp", picture(11), "WEBP"),
        ("bmp", picture(12), "BMP"),
        ("jpeg-cmyk", picture(13).convert("CMYK"), "JPEG"),
        ("jpeg-grey", picture(14).convert("L"), "JPEG"),
        ("tiff-cmyk", picture(15).convert("CMYK"), "TIFF"),
        ("png-rgba-opaque", picture(16).convert("RGBA"), "PNG"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_images_without_transparency_match_imagehash_in_every_mode_but_fast_jpeg(
    label: str, image: Image.Image, fmt: str, mode: str
) -> None:
    data = encode(image, fmt)
    ours = decode_image(data, MAX_PIXELS, 300, mode).phash  # type: ignore[arg-type]
    # A 640x480 JPEG with a 300 px thumbnail is decoded at 1/2 in fast mode: near, not equal.
    assert hamming(ours, imagehash_of(data)) <= (FAST_MAX_BITS if mode == "fast" and fmt == "JPEG" else 0)


def test_transparent_line_art_does_not_hash_to_zero() -> None:
    art = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    draw = ImageDraw.Draw(art)
    draw.line((20, 20, 380, 300), fill=(0, 0, 0, 255), width=12)
    draw.ellipse((100, 200, 300, 380), outline=(0, 0, 0, 255), width=10)
    assert bits_to_int(imagehash.phash(art).hash) == 0  # the trap: imagehash drops alpha
    ours = decode_image(encode(art, "PNG"), MAX_PIXELS, 300).phash
    assert not is_degenerate(ours)


@pytest.mark.filterwarnings("ignore:Palette images with Transparency:UserWarning")
def test_real_transparent_line_art_is_not_one_big_variant_group() -> None:
    raw = [imagehash_of(p.read_bytes()) for p in REAL_LINE_ART]
    assert raw == [0] * len(REAL_LINE_ART)  # the trap, on real clip art: every one a variant of every other
    for mode in ("fast", "exact"):
        ours = [decode_image(p.read_bytes(), MAX_PIXELS, 300, mode).phash for p in REAL_LINE_ART]  # type: ignore[arg-type]
        assert not any(is_degenerate(h) for h in ours)
        closest = min(hamming(a, b) for a, b in itertools.combinations(ours, 2))
        assert closest > 10, f"two different drawings within the variant distance ({closest} bits)"


def test_exact_mode_on_transparent_images_is_imagehash_of_the_picture_on_white() -> None:
    for path in REAL_LINE_ART:
        image = Image.open(path).convert("RGBA")
        on_white = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
        expected = bits_to_int(imagehash.phash(on_white).hash)
        assert decode_image(path.read_bytes(), MAX_PIXELS, 300, "exact").phash == expected, path.name


def test_transparent_image_with_nothing_to_see_on_white_is_hashed_as_stored() -> None:
    # Like an overlay wallpaper whose colours only show on a dark desktop: white covers everything.
    colours = picture(50)  # once: Pillow's noise differs from one call to the next
    hidden = colours.convert("RGBA")
    hidden.putalpha(0)
    data = encode(hidden, "PNG")
    decoded = decode_image(data, MAX_PIXELS, 300, "exact")
    assert decoded.phash == imagehash_of(data) == bits_to_int(imagehash.phash(colours).hash)
    assert not is_degenerate(decoded.phash)


def test_picture_carried_in_the_alpha_band_of_white_is_hashed_on_black() -> None:
    pattern = picture(51).convert("L")
    white = Image.new("RGBA", pattern.size, (255, 255, 255, 255))
    white.putalpha(pattern)
    data = encode(white, "PNG")
    assert is_degenerate(imagehash_of(data))  # as stored: plain white
    on_black = Image.alpha_composite(Image.new("RGBA", white.size, (0, 0, 0, 255)), white)
    decoded = decode_image(data, MAX_PIXELS, 300, "exact")
    assert decoded.phash == bits_to_int(imagehash.phash(on_black).hash)
    assert not is_degenerate(decoded.phash)
    thumb = Image.open(io.BytesIO(decoded.thumbnail)).convert("L")
    assert thumb.getextrema()[0] < 64  # the thumbnail shows the same picture on black, not a white square


# The transposition that undoes each EXIF orientation's, to store an upright picture rotated.
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_exif_orientation_is_applied_before_hashing(orientation: int, mode: str) -> None:
    upright = picture(30, (320, 200))
    stored = upright.transpose(STORED_AS[orientation]) if orientation in STORED_AS else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "PNG", exif=exif.tobytes())
    # Pillow's own reading of the tag agrees that this file shows the upright picture.
    assert np.array_equal(np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))), np.asarray(upright))
    decoded = decode_image(data, MAX_PIXELS, 300, mode)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height) == (320, 200)
    assert decoded.phash == bits_to_int(imagehash.phash(upright).hash)
    assert Image.open(io.BytesIO(decoded.thumbnail)).size == (300, 188)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The same JPEG bytes with an EXIF block carrying `orientation` inserted after the SOI marker."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_rotated_real_jpeg_reports_the_displayed_size(mode: str) -> None:
    data = with_exif_orientation((REAL / "jpeg" / "plasma-Shell-720x1440.jpg").read_bytes(), 6)
    decoded = decode_image(data, MAX_PIXELS, 40, mode)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height) == (1440, 720)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert upright.size == (1440, 720)
    assert hamming(decoded.phash, bits_to_int(imagehash.phash(upright).hash)) <= (0 if mode == "exact" else 4)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow, in imagehash_of below
def test_unreadable_exif_block_shows_the_picture_as_stored() -> None:
    image = picture(31, (320, 200))
    data = encode(image, "JPEG", quality=90, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fgarbage")
    decoded = decode_image(data, MAX_PIXELS, 300, "exact")
    assert (decoded.width, decoded.height) == (320, 200)
    assert decoded.phash == imagehash_of(data)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = picture(32).convert("L")
    wide = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)  # 0..255 -> 0..65535
    data = encode(wide, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    decoded = decode_image(data, MAX_PIXELS, 300)
    assert decoded.phash == bits_to_int(imagehash.phash(grey).hash)
    assert decoded.phash != imagehash_of(data)  # imagehash clips it to a white picture


def test_palette_gif_with_transparency_is_composited() -> None:
    image = picture(33, (300, 300)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    ImageDraw.Draw(image).rectangle((0, 0, 150, 300), fill=0)
    data = encode(image, "GIF", transparency=0)
    expected = Image.open(io.BytesIO(data)).convert("RGBA")
    expected = Image.alpha_composite(Image.new("RGBA", expected.size, (255, 255, 255, 255)), expected)
    assert decode_image(data, MAX_PIXELS, 300).phash == bits_to_int(imagehash.phash(expected).hash)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_is_hashed_from_its_first_frame(fmt: str) -> None:
    frames = [picture(10, (200, 200)), picture(11, (200, 200))]
    if fmt == "GIF":
        frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    options = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    first = decode_image(encode(frames[0], fmt, **options), MAX_PIXELS, 300).phash
    assert decode_image(data, MAX_PIXELS, 300).phash == first


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_mpo_from_a_camera_is_stored_as_the_jpeg_it_is(mode: str) -> None:
    first, second = picture(40), picture(41)
    data = encode(first, "MPO", save_all=True, append_images=[second], quality=90)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = decode_image(data, MAX_PIXELS, 300, mode)  # type: ignore[arg-type]
    assert (decoded.ext, decoded.width, decoded.height) == ("jpg", 640, 480)
    first_alone = bits_to_int(imagehash.phash(Image.open(io.BytesIO(encode(first, "JPEG", quality=90)))).hash)
    assert hamming(decoded.phash, first_alone) <= (0 if mode == "exact" else FAST_MAX_BITS)
    assert hamming(decoded.phash, imagehash_of(encode(second, "JPEG", quality=90))) > 10


def test_similar_pictures_have_near_hashes_and_different_ones_far() -> None:
    original = decode_image(encode(picture(3), "PNG"), MAX_PIXELS, 300).phash
    recompressed = decode_image(encode(picture(3).resize((320, 240)), "JPEG", quality=60), MAX_PIXELS, 300).phash
    other = decode_image(encode(picture(4), "PNG"), MAX_PIXELS, 300).phash
    assert hamming(original, recompressed) <= 10 < hamming(original, other)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("not_an_image", "not an image"),
        ("truncated", "truncated"),
        ("empty", "not an image"),
        ("bomb", "more than the limit"),
    ],
)
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_bad_files_raise_with_a_reason(tmp_path, kind: str, reason: str, mode: str) -> None:
    path = bad_images(tmp_path)[kind]
    with pytest.raises(BadImageError, match=reason):
        decode_image(path.read_bytes(), MAX_PIXELS, 300, mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("thumbnail", DRAFT_THUMBNAILS)
def test_truncated_progressive_jpeg_is_refused_even_when_decoded_small(thumbnail: int) -> None:
    whole = (REAL / "jpeg" / "mate-FreshFlower.jpg").read_bytes()
    for cut in (len(whole) - 2, len(whole) // 2):
        with pytest.raises(BadImageError, match="truncated"):
            decode_image(whole[:cut], MAX_PIXELS, thumbnail, "fast")


def test_unsupported_format_is_named() -> None:
    with pytest.raises(BadImageError, match="unsupported image format ICO"):
        decode_image(encode(picture(1, (64, 64)), "ICO"), MAX_PIXELS, 300)


def test_pixel_limit_is_a_setting() -> None:
    data = encode(picture(1, (200, 100)), "PNG")
    assert decode_image(data, 20_000, 300).width == 200
    with pytest.raises(BadImageError, match="20000 pixels, more than the limit of 19999"):
        decode_image(data, 19_999, 300)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_damaged_real_files_decode_or_raise_bad_image_never_anything_else(mode: str) -> None:
    rng = random.Random(7)
    originals = [path.read_bytes() for path in [*REAL_JPEGS, *REAL_LINE_ART]]
    originals.append(encode(picture(2, (200, 150)), "JPEG", progressive=True))
    outcomes = set()
    for _ in range(300):
        data = bytearray(rng.choice(originals))
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 8)):  # flipped bytes anywhere, headers included
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data = data[: rng.randrange(len(data))]
        try:
            decode_image(bytes(data), MAX_PIXELS, rng.choice((40, 300)), mode)  # type: ignore[arg-type]
            outcomes.add("decoded")
        except BadImageError:
            outcomes.add("refused")
    assert outcomes == {"decoded", "refused"}  # both kinds of damage were met


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_a_smaller_thumbnail_comes_from_the_same_decode(mode: str) -> None:
    data = (REAL / "jpeg" / "mate-FreshFlower.jpg").read_bytes()  # 1600x1203
    decoded = decode_image(data, MAX_PIXELS, 480, mode, small_size=240)  # type: ignore[arg-type]
    large = Image.open(io.BytesIO(decoded.thumbnail))
    small = Image.open(io.BytesIO(decoded.small_thumbnail))
    assert large.size == (480, 361) and small.size == (240, 180) and small.format == "JPEG"
    # The same picture, smaller: the large one halved looks like the small one.
    halved = np.asarray(large.resize(small.size), dtype=np.int16)
    assert np.abs(halved - np.asarray(small, dtype=np.int16)).mean() < 4


@pytest.mark.parametrize("small", [0, 480, 600], ids=["none", "same", "larger"])
def test_no_smaller_thumbnail_unless_it_is_smaller(small: int) -> None:
    assert (
        decode_image(encode(picture(1, (500, 300)), "PNG"), MAX_PIXELS, 480, "fast", small_size=small).small_thumbnail
        == b""
    )
