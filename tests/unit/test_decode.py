import imagehash
import pytest
from PIL import Image

from paktum_common.errors import BadImageError
from paktum_common.phash import bits_to_int, hamming
from paktum_hasher.decode import decode_image
from tests.imagefiles import bad_images, encode, picture

MAX_PIXELS = 50_000_000


@pytest.mark.parametrize(
    ("fmt", "ext"), [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp")]
)
def test_decodes_every_stored_format(fmt: str, ext: str) -> None:
    image = picture(1, (500, 300))
    decoded = decode_image(encode(image, fmt), MAX_PIXELS, 300)
    assert (decoded.width, decoded.height, decoded.ext) == (500, 300, ext)
    thumb = Image.open(__import__("io").BytesIO(decoded.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) == 300


def test_phash_of_a_lossless_image_matches_imagehash() -> None:
    image = picture(7)
    decoded = decode_image(encode(image, "PNG"), MAX_PIXELS, 300)
    assert decoded.phash == bits_to_int(imagehash.phash(image).hash)


def test_similar_pictures_have_near_hashes_and_different_ones_far() -> None:
    original = decode_image(encode(picture(3), "PNG"), MAX_PIXELS, 300).phash
    recompressed = decode_image(encode(picture(3).resize((320, 240)), "JPEG", quality=60), MAX_PIXELS, 300).phash
    other = decode_image(encode(picture(4), "PNG"), MAX_PIXELS, 300).phash
    assert hamming(original, recompressed) <= 10 < hamming(original, other)


def test_transparent_line_art_does_not_hash_to_zero() -> None:
    art = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(art)
    draw.line((20, 20, 380, 300), fill=(0, 0, 0, 255), width=12)
    draw.ellipse((100, 200, 300, 380), outline=(0, 0, 0, 255), width=10)
    assert bits_to_int(imagehash.phash(art).hash) == 0  # the trap: imagehash drops alpha
    assert decode_image(encode(art, "PNG"), MAX_PIXELS, 300).phash != 0


def test_animation_is_hashed_from_its_first_frame() -> None:
    frames = [picture(10, (200, 200)).convert("P"), picture(11, (200, 200)).convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = decode_image(encode(frames[0], "GIF"), MAX_PIXELS, 300).phash
    assert decode_image(data, MAX_PIXELS, 300).phash == first


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("not_an_image", "not an image"),
        ("truncated", "truncated"),
        ("empty", "not an image"),
        ("bomb", "more than the limit"),
    ],
)
def test_bad_files_raise_with_a_reason(tmp_path, kind: str, reason: str) -> None:
    path = bad_images(tmp_path)[kind]
    with pytest.raises(BadImageError, match=reason):
        decode_image(path.read_bytes(), MAX_PIXELS, 300)


def test_pixel_limit_is_a_setting() -> None:
    data = encode(picture(1, (200, 100)), "PNG")
    assert decode_image(data, 20_000, 300).width == 200
    with pytest.raises(BadImageError, match="20000 pixels, more than the limit of 19999"):
        decode_image(data, 19_999, 300)
