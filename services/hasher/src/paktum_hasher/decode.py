"""Decode an image once and derive from it everything the index needs: size, pHash, thumbnail.

Runs in worker processes (CPU-bound): a pure function of the bytes and a few limits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from paktum_common.errors import BadImageError
from paktum_common.phash import phash_int

# Formats we store, and the extension a stored file gets.
FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
THUMBNAIL_QUALITY = 85
BACKGROUND = (255, 255, 255)

# A truncated file must fail, not decode to a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# The pixel limit is ours (PAKTUM_MAX_IMAGE_PIXELS), checked from the header before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    ext: str
    phash: int
    thumbnail: bytes


def decode_image(data: bytes, max_pixels: int, thumbnail_size: int) -> DecodedImage:
    """Raise BadImageError (with the reason) for anything that is not a whole, sane image."""
    try:
        image = Image.open(io.BytesIO(data))
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
        image.seek(0)  # animations: the first frame stands for the whole
        image.load()
        flat = _flatten(ImageOps.exif_transpose(image) or image)
    except BadImageError:
        raise
    except UnidentifiedImageError as exc:
        raise BadImageError("not an image (unidentified format)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImageError(f"cannot decode image: {exc}") from exc
    return DecodedImage(
        width=width,
        height=height,
        ext=FORMAT_EXTENSIONS[fmt],
        phash=phash_int(flat),
        thumbnail=_thumbnail(flat, thumbnail_size),
    )


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto a solid background (hashing drops alpha)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clip everything above 255 to white.
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def _thumbnail(image: Image.Image, size: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=False)
    return out.getvalue()
