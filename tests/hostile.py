"""Hostile image files, made on the spot: scan bombs, decompression bombs of every format we accept, animations
of many frames, headers that claim gigapixels. Shared by tests/ and bench/hostile.py.

Each maker returns the file's bytes. Sizes are parameters: the tests use small ones against a small memory
budget, the bench uses ones near the real limits. Files are written by hand where Pillow would need the whole
picture in memory to encode it (PNG, BMP), with Pillow where it is cheap (flat pictures compress to nothing).
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from paktum_hasher.jpeg_scans import SOS, segments


def jpeg_scan_bomb(scans: int, size: tuple[int, int] = (1000, 1000)) -> bytes:
    """A progressive greyscale JPEG whose last scan (an AC refinement) is repeated up to `scans` scans.

    libjpeg warns about the bogus progression and reads every scan over the whole picture: each costs time in
    proportion to the picture's blocks, a few hundred bytes each (the issue's 365 KB file took 119 s of CPU).
    """
    data = _encode(Image.new("L", size, 128), "JPEG", progressive=True, quality=90)
    found = [s for s in segments(data) if s.marker == SOS]
    repeated = data[found[-1].start : found[-1].end]
    return data[: found[-1].end] + repeated * max(0, scans - len(found)) + b"\xff\xd9"


def jpeg_header_claiming(width: int, height: int) -> bytes:
    """A baseline JPEG's header (SOF0) that claims `width` x `height` before any pixel data."""
    real = _encode(Image.new("L", (8, 8), 128), "JPEG", quality=90)
    out = bytearray(real)
    for segment in segments(real):
        if segment.marker == 0xC0:
            struct.pack_into(">HH", out, segment.start + 5, height, width)
    return bytes(out)


def png_bomb(width: int, height: int, colour_type: int = 6, bit_depth: int = 8) -> bytes:
    """A flat PNG written row by row (never held whole): 120 megapixels of RGBA compress to about 500 KB."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = bytes(1 + width * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if colour_type == 3:
        chunks.append(_png_chunk(b"PLTE", bytes(3)))
        chunks.append(_png_chunk(b"tRNS", b"\x00"))  # palette entry 0 transparent: composited like RGBA
    chunks.append(_png_chunk(b"IDAT", idat))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def bmp_rle_bomb(width: int, height: int) -> bytes:
    """An 8-bit run-length BMP: each row is runs of 255 pixels and an end of line, a few bytes per 255 pixels."""
    runs = b"\xff\x00" * (width // 255) + (bytes([width % 255, 0]) if width % 255 else b"")
    pixels = (runs + b"\x00\x00") * height + b"\x00\x01"
    palette = b"\x80\x80\x80\x00" * 256
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def gif_bomb(width: int, height: int) -> bytes:
    return _encode(Image.new("P", (width, height), 0), "GIF")


def webp_bomb(width: int, height: int) -> bytes:
    """A lossless RGBA WebP of one colour: a few dozen bytes for any size."""
    return _encode(Image.new("RGBA", (width, height), (10, 20, 30, 128)), "WEBP", lossless=True)


def tiff_bomb(width: int, height: int) -> bytes:
    return _encode(Image.new("RGB", (width, height), (200, 100, 50)), "TIFF", compression="tiff_adobe_deflate")


def gif_canvas_of_tiny_frames(width: int, height: int, frames: int = 1000) -> bytes:
    """A GIF whose screen is `width` x `height` and whose frames are one pixel each: a few bytes a frame."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    # One pixel of colour 0 in LZW with a minimum code size of 2: clear, 0, end (the classic 1x1 GIF).
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame * frames + b"\x3b"


def animated(fmt: str, frames: int, size: tuple[int, int] = (64, 64)) -> bytes:
    """An animation of `frames` frames (GIF or WebP); only the first is ever decoded."""
    pictures = [Image.new("RGB", size, (i % 256, (i * 7) % 256, (i * 13) % 256)) for i in range(frames)]
    options: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    return _encode(pictures[0], fmt, save_all=True, append_images=pictures[1:], duration=20, **options)


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    refusal: str  # a phrase of the reason it is refused with; "" when its first frame is decoded


BUDGET = "too large to decode in"
# name -> (maker of the file at a side length, the phrase its refusal says). Side 2000: over a 32 MiB budget.
KINDS: dict[str, tuple[Callable[[int], bytes], str]] = {
    "jpeg-2000-scans": (lambda side: jpeg_scan_bomb(2000), "more than 100 scans"),
    "jpeg-claims-3.6-gigapixels": (lambda side: jpeg_header_claiming(60000, 60000), "PAKTUM_MAX_IMAGE_PIXELS"),
    "png-rgba": (lambda side: png_bomb(side, side), BUDGET),
    "png-rgb-16-bit": (lambda side: png_bomb(side, side, colour_type=2, bit_depth=16), BUDGET),
    "png-grey-16-bit": (lambda side: png_bomb(side * 2, side * 2, colour_type=0, bit_depth=16), BUDGET),
    "png-palette-transparent": (lambda side: png_bomb(side * 2, side * 2, colour_type=3), BUDGET),
    "webp-lossless-rgba": (lambda side: webp_bomb(side, side), BUDGET),
    "gif": (lambda side: gif_bomb(side * 2, side * 2), BUDGET),
    "bmp-rle8": (lambda side: bmp_rle_bomb(side * 2, side * 2), BUDGET),
    "tiff-deflate": (lambda side: tiff_bomb(side, side), BUDGET),
    "gif-canvas-of-tiny-frames": (lambda side: gif_canvas_of_tiny_frames(side * 2, side * 2), BUDGET),
    "gif-500-frames": (lambda side: animated("GIF", 500), ""),
    "webp-500-frames": (lambda side: animated("WEBP", 500), ""),
}


@functools.cache
def hostile(name: str, side: int = 2000) -> Hostile:
    make, refusal = KINDS[name]
    return Hostile(name, make(side), refusal)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()
