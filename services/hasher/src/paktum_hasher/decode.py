"""Decode an image once and derive from it everything the index needs: size, pHash, thumbnail.

Runs in worker processes (CPU-bound): a pure function of the bytes, a few limits and the pHash mode.

One decode per image. In `fast` mode a JPEG is decoded straight at reduced scale (libjpeg scales
in the DCT domain, by 1/2, 1/4 or 1/8), just large enough for the thumbnail; the pHash comes from
that same reduced decode. Every other format, and every image in `exact` mode, is decoded at full
size. The dimensions always come from the file's header, never from the reduced decode.

What gets hashed is the picture as a viewer sees it: the EXIF orientation applied, transparency
composited onto white (imagehash drops alpha, so black line art on a transparent background would
otherwise hash to zero; when white leaves nothing to see, the image as stored or on black, see
_phash_and_picture), 16-bit samples scaled to 8 bits. For an image without transparency, EXIF
orientation or 16-bit samples, that picture is the file as Pillow opens it, so `exact` mode equals
`imagehash.phash(Image.open(file))` bit for bit; for the others it equals `imagehash.phash` of the
picture described. `fast` mode differs only for JPEGs large enough to be decoded at reduced scale:
bench/README.md gives the measured differences.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from paktum_common.dct_hash import PictureHashes, draft_box, fit, transparent_hashes, with_hues
from paktum_common.errors import BadImageError
from paktum_common.phash import Symmetry
from paktum_common.settings import Settings
from paktum_hasher.jpeg_scans import dc_scans_only, scan_count
from paktum_hasher.phash import hashes_of, hues_of_picture
from paktum_hasher.pool import memory_refusal

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
# More scans than any encoder writes (a progressive JPEG has about ten): libjpeg reads each one over the
# whole picture, so a file of thousands is a CPU bomb, refused before it is decoded.
MAX_JPEG_SCANS = 100
# Callers that pass no budget (tests, benches) get the service's: PAKTUM_DECODE_MEMORY_MIB's default.
DEFAULT_MEMORY_MIB: int = Settings.model_fields["decode_memory_mib"].default

# Bytes per pixel of Pillow's storage: it keeps RGB, LA and PA in 4 bytes, like RGBA.
PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
WIDE_PIXEL_BYTES = 4
# What the decoder itself holds besides the picture it returns, per pixel of the file: libwebp's animation
# decoder keeps two RGBA canvases and hands Pillow a third copy; libtiff may read through an RGBA buffer.
DECODER_BYTES_PER_PIXEL = {"WEBP": 12, "TIFF": 4}
# Colour conversions run over bands of rows this many pixels large, so that a transparent or 16-bit picture
# is never held twice at full size: only the decoded image and its greyscale for the pHash are.
BAND_PIXELS = 1 << 20

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
    small_thumbnail: bytes = b""  # made from the thumbnail, when a smaller size is asked for and smaller
    # The pHashes of the picture mirrored and rotated, then (transparent pictures) of it flattened on the
    # other background: paktum_common.phash's alternate slots.
    alternates: tuple[int, ...] = ()
    # Whether the picture is symmetric (its plain pHash then mostly noise), and its symmetric hashes: of the
    # picture as hashed, then (transparent pictures) of it on the other background. paktum_common.dct_hash.
    symmetric: bool = False
    symmetric_hashes: tuple[int, ...] = ()
    signature: bytes = b""  # of the plain pHash's block, then the hue mark (paktum_common.dct_hash.picture_hashes)

    @property
    def symmetry(self) -> Symmetry | None:
        return Symmetry(self.symmetric, self.symmetric_hashes) if self.symmetric_hashes else None

    @property
    def hashes(self) -> PictureHashes:
        return PictureHashes(self.phash, self.alternates, self.symmetric, self.symmetric_hashes, self.signature)


def decode_image(
    data: bytes,
    max_pixels: int,
    thumbnail_size: int,
    phash_mode: PhashMode = "fast",
    *,
    small_size: int = 0,
    memory_mib: int = DEFAULT_MEMORY_MIB,
) -> DecodedImage:
    """Raise BadImageError (with the reason) for anything that is not a whole, sane image, or that would
    need more than `memory_mib` MiB to decode."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about what it recovers from (a corrupt EXIF block, palette transparency
            # given as bytes): the image either decodes or raises, and stray lines on a worker's
            # stderr help no one.
            warnings.simplefilter("ignore", UserWarning)
            return _decode(data, max_pixels, thumbnail_size, phash_mode, small_size, memory_mib)
    except BadImageError:
        raise
    except MemoryError as exc:  # the estimate fell short and the worker's address-space cap caught it
        raise BadImageError(memory_refusal(memory_mib)) from exc
    except UnidentifiedImageError as exc:
        raise BadImageError("not an image (unidentified format)") from exc
    except DECODE_ERRORS as exc:
        raise BadImageError(f"cannot decode image: {exc}") from exc


def _decode(
    data: bytes, max_pixels: int, thumbnail_size: int, phash_mode: PhashMode, small_size: int, memory_mib: int
) -> DecodedImage:
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
    if fmt in ("JPEG", "MPO") and (scans := scan_count(data, MAX_JPEG_SCANS)) > MAX_JPEG_SCANS:
        raise BadImageError(f"JPEG has more than {MAX_JPEG_SCANS} scans ({scans} counted so far): refused unread")
    image.seek(0)  # animations: the first frame stands for the whole
    if phash_mode == "fast" and fmt in ("JPEG", "MPO"):
        image = _draft(image, data, draft_box(width, height, thumbnail_size))
    # Before anything that may decode: Pillow reads a PNG's EXIF by loading the whole image.
    if decode_bytes(image, fmt, (width, height)) > memory_mib * 1024 * 1024:
        raise BadImageError(memory_refusal(memory_mib))
    orientation = _orientation(image)
    image.load()
    transpose = ORIENTATION_TRANSPOSE.get(orientation)
    hashes, picture = _phash_and_picture(image, fit(image.width, image.height, thumbnail_size), transpose)
    hashes = with_hues(hashes, hues_of_picture(picture))  # of the picture hashed, in colour
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    thumbnail = _resized(picture, thumbnail_size)
    # The smaller one from the larger: the same decode, then a box filter over whole factors (480 to 240 is
    # one 2x2 average), a third of what a bicubic filter costs there.
    small = _jpeg(_resized(thumbnail, small_size, reducing_gap=1.0)) if 0 < small_size < thumbnail_size else b""
    return DecodedImage(
        width=width,
        height=height,
        ext=FORMAT_EXTENSIONS[fmt],
        phash=hashes.plain,
        thumbnail=_jpeg(thumbnail),
        small_thumbnail=small,
        alternates=hashes.alternates,
        symmetric=hashes.symmetric,
        symmetric_hashes=hashes.symmetric_hashes,
        signature=hashes.signature,
    )


def decode_bytes(image: Image.Image, fmt: str, file_size: tuple[int, int]) -> int:
    """An upper bound of the memory a decode of `image` (opened, not loaded; maybe drafted) takes at its peak.

    The picture as Pillow stores it, what the decoder holds besides (a progressive JPEG's coefficients are
    kept for the whole file even when it is decoded at reduced scale), and the greyscale that the pHash is
    computed from, twice (ours and imagehash's copy), once more when the EXIF orientation turns it.
    """
    pixels = image.width * image.height
    stored = pixels * PIXEL_BYTES.get(image.mode, WIDE_PIXEL_BYTES)
    decoder = file_size[0] * file_size[1] * DECODER_BYTES_PER_PIXEL.get(fmt, 0)
    if fmt in ("JPEG", "MPO") and image.info.get("progressive"):
        decoder = _coefficient_bytes(image, file_size)
    greys = 3 * pixels
    bands = 3 * BAND_PIXELS * WIDE_PIXEL_BYTES
    return stored + decoder + greys + bands


def _coefficient_bytes(image: Image.Image, size: tuple[int, int]) -> int:
    """libjpeg's whole-image coefficient buffer of a progressive JPEG: 64 two-byte coefficients per block."""
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    blocks = sum(
        math.ceil(size[0] * layer[1] / h_max / 8) * math.ceil(size[1] * layer[2] / v_max / 8) for layer in layers
    )
    return blocks * 64 * 2


def _draft(image: Image.Image, data: bytes, request: tuple[int, int]) -> Image.Image:
    """Have libjpeg decode at the smallest scale that still covers `request` (paktum_common.dct_hash.draft_box)."""
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


# A band of rows of the decoded image -> the same rows as the greyscale to hash and as the RGB picture.
Bands = Callable[[Image.Image], tuple[Image.Image, Image.Image]]


def _phash_and_picture(
    image: Image.Image, box: tuple[int, int], transpose: Image.Transpose | None
) -> tuple[PictureHashes, Image.Image]:
    """The hashes of the picture a viewer sees (its pHash, alternates, symmetric hashes), and that picture in RGB
    reduced towards `box` for the thumbnail.

    An opaque image is hashed in its own mode, exactly as imagehash would see it (its conversion
    to greyscale from CMYK or a palette is not always the same as via RGB).
    """
    if image.mode in SIXTEEN_BIT_MODES:
        # imagehash would clip every sample above 255 to white: scale to 8 bits instead.
        return _render(image, _sixteen_bit, box, transpose)
    if not (image.mode in ALPHA_MODES or "transparency" in image.info):
        return _render(image, _as_stored, box, transpose)
    # Transparent: most such images are art on a transparent background, meant to be seen on a
    # light page, and imagehash's dropping of alpha would hash what hides under the transparent
    # pixels (often plain black: every piece of black line art would hash to 0). A few carry
    # their picture in the alpha band of one flat colour, or in colours under a faint alpha
    # (overlay wallpapers): for those, white gives a flat picture, so the first of these that
    # says something is hashed: on white, as stored (alpha dropped), on black.
    # Whichever is hashed, the picture flattened on black (or, when that is the one hashed, on white)
    # follows as the second background's alternates: a re-save flattened on either matches.
    pictures: dict[str, Image.Image] = {}
    on_white, pictures["white"] = _render(image, _on_background(WHITE), box, transpose)
    on_black, pictures["black"] = _render(image, _on_background(BLACK), box, transpose)

    def as_stored() -> PictureHashes:
        hashes, pictures["stored"] = _render(image, _as_stored, box, transpose)
        return hashes

    hashes, hashed = transparent_hashes(on_white, on_black, as_stored)
    return hashes, pictures[hashed]


def _render(
    image: Image.Image, bands: Bands, box: tuple[int, int], transpose: Image.Transpose | None
) -> tuple[PictureHashes, Image.Image]:
    """Hash the greyscale `bands` makes of `image`, and reduce its RGB picture towards `box`, band by band.

    Every conversion is per pixel, so the greyscale is exactly that of the whole picture converted at once;
    only it and the decoded image are ever held at full size. The RGB picture is reduced by whole factors
    (a box filter, as Pillow's reducing_gap does) as it is made, to at least twice the thumbnail.
    """
    width, height = image.size
    factor = (max(1, int(width / box[0] / 2)), max(1, int(height / box[1] / 2)))
    if bands is _as_stored and image.mode == "RGB":
        # Already the picture: no conversion to hold twice, so no bands either.
        grey, small = image.convert("L"), image.reduce(factor) if factor != (1, 1) else image
        if transpose is not None:
            grey, small = grey.transpose(transpose), small.transpose(transpose)
        return hashes_of(grey), small
    grey = Image.new("L", image.size)
    small = Image.new("RGB", (math.ceil(width / factor[0]), math.ceil(height / factor[1])))
    rows = max(factor[1], BAND_PIXELS // width // factor[1] * factor[1])
    for top in range(0, height, rows):
        band_grey, band_rgb = bands(image.crop((0, top, width, min(height, top + rows))))
        grey.paste(band_grey, (0, top))
        small.paste(band_rgb.reduce(factor) if factor != (1, 1) else band_rgb, (0, top // factor[1]))
        del band_grey, band_rgb
    if transpose is not None:
        grey = grey.transpose(transpose)
        small = small.transpose(transpose)
    return hashes_of(grey), small


def _as_stored(band: Image.Image) -> tuple[Image.Image, Image.Image]:
    return band.convert("L"), band if band.mode == "RGB" else band.convert("RGB")


def _sixteen_bit(band: Image.Image) -> tuple[Image.Image, Image.Image]:
    samples = np.asarray(band)
    if samples.dtype != np.uint16:
        samples = samples.clip(0, 65535)
    grey = Image.fromarray((samples >> 8).astype(np.uint8), "L")
    return grey, grey.convert("RGB")


def _on_background(colour: tuple[int, int, int]) -> Bands:
    def flatten(band: Image.Image) -> tuple[Image.Image, Image.Image]:
        # Pasting through the alpha band gives the same pixels as Image.alpha_composite onto an
        # opaque background, in one pass instead of three.
        rgba = band if band.mode == "RGBA" else band.convert("RGBA")
        flat = Image.new("RGB", rgba.size, colour)
        flat.paste(rgba, (0, 0), rgba)
        return flat.convert("L"), flat

    return flatten


def _resized(image: Image.Image, size: int, reducing_gap: float = 2.0) -> Image.Image:
    box = fit(image.width, image.height, size)
    # reducing_gap: a box-filter reduction by whole factors first, bicubic only over the last `reducing_gap`x
    # (over at most 2x, bicubic looks like Lanczos at two thirds of its cost: what keeps 480 px as quick as 300 was).
    return image if box == image.size else image.resize(box, Image.Resampling.BICUBIC, reducing_gap=reducing_gap)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=False)
    return out.getvalue()
