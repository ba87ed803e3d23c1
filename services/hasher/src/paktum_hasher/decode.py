"""Decode an image once and derive from it everything the index needs: size, pHash, thumbnail.

Runs in worker processes (CPU-bound): a pure function of the bytes, a few limits and the pHash mode.

One decode per image. In `fast` mode a JPEG is decoded straight at reduced scale (libjpeg scales
in the DCT domain, by 1/2, 1/4 or 1/8), just large enough for the thumbnail; the pHash comes from
that same reduced decode. Every other format, and every image in `exact` mode, is decoded at full
size. The dimensions always come from the file's header, never from the reduced decode.

What gets hashed is the picture as a viewer sees it: the EXIF orientation applied, transparency
composited onto white (imagehash drops alpha, so black line art on a transparent background would
otherwise hash to zero; when white leaves nothing to see, the image as stored or on black, see
_phash_and_picture; the hashes on the other background travel as alternates), 16-bit samples scaled
to 8 bits. For an image without transparency, EXIF orientation or 16-bit samples, that picture is
the file as Pillow opens it, so `exact` mode equals
`imagehash.phash(Image.open(file))` bit for bit; for the others it equals `imagehash.phash` of the
picture described. `fast` mode differs only for JPEGs large enough to be decoded at reduced scale:
bench/README.md gives the measured differences.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from paktum_common.errors import BadImageError
from paktum_common.phash import is_degenerate
from paktum_hasher.jpeg_scans import dc_scans_only
from paktum_hasher.phash import phash_set

PhashMode = Literal["fast", "exact"]

# Formats we store, and the extension a stored file gets. MPO is a JPEG with extra pictures
# appended (phone cameras write them): Pillow names it apart, browsers show it as the JPEG it is.
FORMAT_EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tiff",
}
THUMBNAIL_QUALITY = 85
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# Never decode smaller than this on a side: imagehash resizes to 32x32, and a draft that went
# below that (a very wide panorama) would hash a picture with too few rows.
MIN_DRAFT_SIDE = 64

# EXIF orientation -> the transposition that shows the picture upright (EXIF 2.3, tag 0x0112).
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# A truncated file must fail, not decode to a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# The pixel limit is ours (PAKTUM_MAX_IMAGE_PIXELS), checked from the header before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None

# What Pillow's decoders raise on hostile or broken files besides OSError: its own fuzzing finds
# these in plugins that parse headers with struct and index tables read from the file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)


@dataclass(frozen=True)
class DecodedImage:
    width: int  # as displayed: a 90-degree EXIF orientation swaps the stored width and height
    height: int
    ext: str
    phash: int
    thumbnail: bytes
    # The pHashes of the picture mirrored and rotated, then (transparent pictures) of it flattened on the
    # other background: paktum_common.phash's alternate slots.
    alternates: tuple[int, ...] = ()


def decode_image(data: bytes, max_pixels: int, thumbnail_size: int, phash_mode: PhashMode = "fast") -> DecodedImage:
    """Raise BadImageError (with the reason) for anything that is not a whole, sane image."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about what it recovers from (a corrupt EXIF block, palette transparency
            # given as bytes): the image either decodes or raises, and stray lines on a worker's
            # stderr help no one.
            warnings.simplefilter("ignore", UserWarning)
            return _decode(data, max_pixels, thumbnail_size, phash_mode)
    except BadImageError:
        raise
    except UnidentifiedImageError as exc:
        raise BadImageError("not an image (unidentified format)") from exc
    except DECODE_ERRORS as exc:
        raise BadImageError(f"cannot decode image: {exc}") from exc


def _decode(data: bytes, max_pixels: int, thumbnail_size: int, phash_mode: PhashMode) -> DecodedImage:
    image: Image.Image = Image.open(io.BytesIO(data))
    fmt = image.format or ""
    if fmt not in FORMAT_EXTENSIONS:
        raise BadImageError(f"unsupported image format {fmt or 'unknown'}")
    width, height = image.size
    if width < 1 or height < 1:
        raise BadImageError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise BadImageError(
            f"image has {width * height} pixels, more than the limit of {max_pixels} (PAKTUM_MAX_IMAGE_PIXELS)"
        )
    orientation = _orientation(image)
    image.seek(0)  # animations: the first frame stands for the whole
    if phash_mode == "fast" and fmt in ("JPEG", "MPO"):
        image = _draft(image, data, _fit(width, height, thumbnail_size))
    image.load()
    if orientation in ORIENTATION_TRANSPOSE:
        image = image.transpose(ORIENTATION_TRANSPOSE[orientation])
    phash, alternates, picture = _phash_and_picture(image)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return DecodedImage(
        width=width,
        height=height,
        ext=FORMAT_EXTENSIONS[fmt],
        phash=phash,
        thumbnail=_thumbnail(picture, thumbnail_size),
        alternates=alternates,
    )


def _draft(image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image:
    """Have libjpeg decode at the smallest scale that still covers `box` (the thumbnail)."""
    request = (max(box[0], MIN_DRAFT_SIDE), max(box[1], MIN_DRAFT_SIDE))
    image.draft(None, request)
    scale = image.decoderconfig[:1] if isinstance(image, ImageFile.ImageFile) else ()
    if scale == (8,) and image.info.get("progressive"):
        thinned = dc_scans_only(data)
        if thinned is not None:
            reopened = Image.open(io.BytesIO(thinned))
            reopened.draft(None, request)
            if reopened.size == image.size and reopened.mode == image.mode:
                return reopened
    return image


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 (as stored) when there is none or the EXIF block cannot be read."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except DECODE_ERRORS:
        return 1  # a broken EXIF block does not make a broken picture: show it as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _phash_and_picture(image: Image.Image) -> tuple[int, tuple[int, ...], Image.Image]:
    """The pHash of the picture a viewer sees, its alternates, and that picture in RGB for the thumbnail.

    An opaque image is hashed in its own mode, exactly as imagehash would see it (its conversion
    to greyscale from CMYK or a palette is not always the same as via RGB).
    """
    if image.mode in SIXTEEN_BIT_MODES:
        # imagehash would clip every sample above 255 to white: scale to 8 bits instead.
        samples = np.asarray(image).astype(np.uint32).clip(0, 65535) >> 8
        grey = Image.fromarray(samples.astype(np.uint8), "L")
        return *phash_set(grey), grey.convert("RGB")
    if not (image.mode in ALPHA_MODES or "transparency" in image.info):
        return *phash_set(image), image if image.mode == "RGB" else image.convert("RGB")
    # Transparent: most such images are art on a transparent background, meant to be seen on a
    # light page, and imagehash's dropping of alpha would hash what hides under the transparent
    # pixels (often plain black: every piece of black line art would hash to 0). A few carry
    # their picture in the alpha band of one flat colour, or in colours under a faint alpha
    # (overlay wallpapers): for those, white gives a flat picture, so the first of these that
    # says something is hashed: on white, as stored (alpha dropped), on black.
    # Whichever is hashed, the picture flattened on black (or, when that is the one hashed, on
    # white) follows as the second background's alternates: a re-save flattened on either matches.
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    on_white = _on_background(rgba, WHITE)
    phash, alternates = phash_set(on_white)
    on_black = _on_background(rgba, BLACK)
    black_phash, black_alternates = phash_set(on_black)
    if not is_degenerate(phash):
        return phash, (*alternates, black_phash, *black_alternates), on_white
    as_stored, stored_alternates = phash_set(image)
    if not is_degenerate(as_stored):
        return as_stored, (*stored_alternates, black_phash, *black_alternates), image.convert("RGB")
    if not is_degenerate(black_phash):
        return black_phash, (*black_alternates, phash, *alternates), on_black
    return phash, (*alternates, black_phash, *black_alternates), on_white


def _on_background(rgba: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    # Pasting through the alpha band gives the same pixels as Image.alpha_composite onto an
    # opaque background, in one pass instead of three.
    flat = Image.new("RGB", rgba.size, colour)
    flat.paste(rgba, (0, 0), rgba)
    return flat


def _fit(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of `width` x `height` scaled to fit a `size` square, never enlarged."""
    scale = min(size / width, size / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _thumbnail(image: Image.Image, size: int) -> bytes:
    box = _fit(image.width, image.height, size)
    # reducing_gap: a box-filter reduction by whole factors first, Lanczos only over the last 2x.
    thumb = image if box == image.size else image.resize(box, Image.Resampling.LANCZOS, reducing_gap=2.0)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=False)
    return out.getvalue()
