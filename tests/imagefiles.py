"""Real image files for tests, drawn with Pillow: photo-like content in every format we accept,
plus the broken and hostile files the hasher must reject."""

from __future__ import annotations

import functools
import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter


def picture(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A distinct, detailed RGB picture per seed: a gradient, shapes and noise, softened like a photo."""
    rng = random.Random(seed)
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    tint = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = Image.blend(image, tint, 0.6)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(20, width // 2), y0 + rng.randrange(20, height // 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    noise = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(image, noise, 0.15).filter(ImageFilter.GaussianBlur(1))


def drawing() -> Image.Image:
    """Coloured shapes on a transparent background, no symmetry: on white and on black two different pictures."""
    image = Image.new("RGBA", (240, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 20, 120, 110), fill=(220, 40, 40, 255))
    draw.rectangle((140, 60, 225, 150), fill=(40, 170, 60, 255))
    draw.line((10, 150, 200, 10), fill=(30, 60, 200, 255), width=12)
    return image


def flattened(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    flat = Image.new("RGB", image.size, colour)
    flat.paste(image, (0, 0), image)
    return flat


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def good_images(folder: Path, count: int = 8, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """`count` distinct pictures, cycling through JPEG, PNG, GIF and WebP (the same files on every call)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        ext = GOOD_FORMATS[index % len(GOOD_FORMATS)][0]
        path = folder / f"picture-{index:03d}.{ext}"
        path.write_bytes(_good_image(index, size))
        paths.append(path)
    return paths


GOOD_FORMATS = [("jpg", "JPEG", {"quality": 90}), ("png", "PNG", {"compress_level": 1}), ("gif", "GIF", {}),
                ("webp", "WEBP", {})]  # fmt: skip


@functools.lru_cache(maxsize=128)
def _good_image(index: int, size: tuple[int, int]) -> bytes:
    # Drawing and encoding a large picture takes up to a second; every test asks for the same few.
    _, fmt, options = GOOD_FORMATS[index % len(GOOD_FORMATS)]
    # A large picture is drawn at a quarter of its area and scaled up: as distinct, four times quicker.
    drawn = (max(size[0] // 2, 1), max(size[1] // 2, 1)) if size[0] * size[1] > 640 * 480 else size
    image = picture(index, drawn).resize(size, Image.Resampling.BICUBIC) if drawn != size else picture(index, size)
    if fmt == "GIF":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    return encode(image, fmt, **options)


def bad_images(folder: Path) -> dict[str, Path]:
    """Files with image names that are not whole, sane images, by what is wrong with them."""
    folder.mkdir(parents=True, exist_ok=True)
    whole, bomb = _bad_image_sources()
    files = {
        "not_an_image": (folder / "notes.jpg", b"this is a text file with an image's name\n"),
        "truncated": (folder / "truncated.jpg", whole[: len(whole) // 3]),
        "empty": (folder / "empty.png", b""),
        "bomb": (folder / "bomb.png", bomb),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {kind: path for kind, (path, _) in files.items()}


@functools.lru_cache(maxsize=1)
def _bad_image_sources() -> tuple[bytes, bytes]:
    whole = encode(picture(999), "JPEG", quality=90)
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")  # 400 MP of nothing: a few KB compressed
    return whole, bomb
