"""Benchmark the hasher against imagehash.phash + a full-decode Pillow thumbnail on real images.

The corpus is wallpapers and clip art from Debian packages, fetched with `apt-get download` and
unpacked with `dpkg -x` (nothing is installed) into bench/.corpus, once. Every image goes through
our two modes and the two baselines in turn, in this one process, so machine load hits them
alike; speed is counted in CPU seconds of this process (images/s per core). See bench/README.md.

    make bench-hasher                      # or: .venv/bin/python bench/hasher.py --help
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import imagehash
from PIL import Image, ImageOps

from paktum_common.errors import BadImageError
from paktum_common.phash import hamming, is_degenerate
from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from paktum_hasher.phash import bits_to_int

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
# Package -> how many of its images to use (None: all). Clip art is sampled: 6900 files would
# take long and add nothing the first few hundred do not show.
PACKAGES: dict[str, int | None] = {
    "mate-backgrounds": None,
    "plasma-workspace-wallpapers": None,
    "lomiri-wallpapers-16.04": None,
    "lomiri-wallpapers-20.04": None,
    "ukui-wallpapers": None,
    "gnome-backgrounds": None,
    "openclipart-png": 400,
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
MAX_PIXELS = 120_000_000
VARIANT_DISTANCE = 10
DIFF_BUCKETS = ("0", "1", "2", "3", "4", "5+")


@dataclass
class Sample:
    path: str
    package: str
    part: str  # JPEG, PNG, WEBP, GIF
    transparent: bool
    progressive: bool
    pixels: int
    reference: int = 0  # imagehash.phash(Image.open(file)), what anyone would compute
    displayed_reference: int = 0  # imagehash.phash of the picture a viewer sees (see displayed_reference)
    fast: int = 0
    exact: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def fetch_corpus(corpus: Path, packages: dict[str, int | None]) -> None:
    """apt-get download + dpkg -x each package not already unpacked under `corpus`."""
    debs = corpus / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for package in packages:
        target = corpus / package
        if (target / ".unpacked").exists():
            continue
        print(f"fetching {package} (apt-get download, dpkg -x) ...", file=sys.stderr)
        result = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"apt-get download {package} failed (does `apt-get update` need running first?):\n{result.stderr}")
        deb = max(debs.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
        target.mkdir(exist_ok=True)
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
        (target / ".unpacked").touch()
        deb.unlink()  # the unpacked files are what is used; the archive would only double the space


def collect(corpus: Path, packages: dict[str, int | None]) -> list[Sample]:
    """The distinct image files of each package (packages ship the same file under several names)."""
    seen: set[str] = set()
    samples: list[Sample] = []
    for package, limit in packages.items():
        files = sorted(p for p in (corpus / package).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if limit is not None and len(files) > limit:
            step = len(files) / limit
            files = [files[int(i * step)] for i in range(limit)]  # spread over the whole package
        for path in files:
            data = path.read_bytes()
            digest = hashlib.md5(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            try:
                image = Image.open(io.BytesIO(data))
            except OSError:
                continue
            samples.append(
                Sample(
                    path=str(path.relative_to(corpus)),
                    package=package,
                    part=image.format or "?",
                    transparent=image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
                    progressive=bool(image.info.get("progressive")),
                    pixels=image.width * image.height,
                )
            )
    return samples


def shared_decode_baseline(data: bytes, size: int) -> tuple[int, int, int, bytes]:
    """A naive hasher that at least decodes once: full decode, imagehash.phash, Pillow's thumbnail of it."""
    image = Image.open(io.BytesIO(data))
    image.load()
    width, height = image.size
    phash = bits_to_int(imagehash.phash(image).hash)
    return width, height, phash, full_decode_thumbnail(image, size)


def issue_baseline(data: bytes, size: int) -> tuple[int, int, int, bytes]:
    """The baseline as issue 4 words it: imagehash.phash of the file, plus a full-decode Pillow thumbnail."""
    phash = bits_to_int(imagehash.phash(Image.open(io.BytesIO(data))).hash)
    image = Image.open(io.BytesIO(data))
    image.load()  # loaded first: Image.thumbnail would otherwise draft-decode a JPEG by itself
    return image.width, image.height, phash, full_decode_thumbnail(image, size)


def full_decode_thumbnail(image: Image.Image, size: int) -> bytes:
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85)
    return out.getvalue()


def displayed_reference(data: bytes) -> int:
    """imagehash.phash of the picture a viewer sees, built with Pillow's own helpers.

    Orientation applied; a transparent image composited on white, or when that hash is
    degenerate, as stored (alpha dropped), or on black: the first that is not degenerate.
    """
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if not (image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info):
        return bits_to_int(imagehash.phash(image).hash)
    rgba = image.convert("RGBA")
    candidates = [
        Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba),
        image,
        Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow on palette transparency dropped by imagehash
        hashes = [bits_to_int(imagehash.phash(c).hash) for c in candidates]
    return next((h for h in hashes if not is_degenerate(h)), hashes[0])


def timed(run: Callable[[], T], repeat: int) -> tuple[T, float]:
    """The result of `run` and its fastest of `repeat` runs in CPU seconds of this process
    (other processes' load does not count)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        result = run()
        best = min(best, time.process_time() - started)
    return result, best


PIPELINES = ("issue baseline", "shared-decode baseline", "fast", "exact")


def measure(corpus: Path, samples: list[Sample], size: int, small: int, repeat: int) -> list[Sample]:
    # Warm up imports and lazy initialisation (scipy's FFT, Pillow's plugins) outside the timings.
    warm = (corpus / samples[0].path).read_bytes()
    issue_baseline(warm, size)
    decode_image(warm, MAX_PIXELS, size, "fast", small_size=small)
    measured = []
    for index, sample in enumerate(samples, 1):
        data = (corpus / sample.path).read_bytes()
        # Interleaved per image, so a burst of load elsewhere hits every pipeline alike.
        try:
            fast, fast_seconds = timed(partial(decode_image, data, MAX_PIXELS, size, "fast", small_size=small), repeat)
            exact, exact_seconds = timed(
                partial(decode_image, data, MAX_PIXELS, size, "exact", small_size=small), repeat
            )
        except BadImageError as exc:
            print(f"skipped {sample.path}: {exc}", file=sys.stderr)
            continue
        base, base_seconds = timed(partial(issue_baseline, data, size), repeat)
        _, shared_seconds = timed(partial(shared_decode_baseline, data, size), repeat)
        sample.fast, sample.exact, sample.reference = fast.phash, exact.phash, base[2]
        sample.seconds = dict(zip(PIPELINES, (base_seconds, shared_seconds, fast_seconds, exact_seconds), strict=True))
        sample.displayed_reference = displayed_reference(data)
        measured.append(sample)
        if index % 50 == 0:
            print(f"  {index}/{len(samples)} images", file=sys.stderr)
    return measured


def diff_distribution(diffs: list[int]) -> str:
    if not diffs:
        return "(none)"
    buckets = Counter(str(d) if d < 5 else "5+" for d in diffs)
    counts = " ".join(f"{b}:{buckets.get(b, 0):>4}" for b in DIFF_BUCKETS)
    return f"{counts}   mean {statistics.fmean(diffs):.3f}  max {max(diffs)}"


def largest_group(hashes: list[int], distance: int) -> list[int]:
    """Indexes of the largest connected component when hashes within `distance` bits are linked."""
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if hamming(hashes[i], hashes[j]) <= distance:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(hashes)):
        groups.setdefault(root(i), []).append(i)
    return max(groups.values(), key=len, default=[])


def rate(group: list[Sample], pipeline: str) -> float:
    return len(group) / sum(s.seconds[pipeline] for s in group)


def report(samples: list[Sample], size: int, small: int) -> None:
    parts: dict[str, list[Sample]] = {}
    for s in samples:
        parts.setdefault(f"{s.part} with transparency" if s.transparent else s.part, []).append(s)
    jpeg = [s for s in samples if s.part == "JPEG"]
    parts["  JPEG baseline-coded"] = [s for s in jpeg if not s.progressive]
    parts["  JPEG progressive"] = [s for s in jpeg if s.progressive]
    parts["all"] = samples
    smaller = f" (ours also a {small} px one from it)" if 0 < small < size else ""
    print(
        f"\nSpeed: images/s per core (CPU seconds of this one process), pHash + {size} px thumbnail{smaller}"
        " + dimensions."
    )
    print("issue: imagehash.phash(file) and a full-decode Pillow thumbnail (two decodes, as issue 4 words it)")
    print("shared: the same with one full decode shared by both; ratios are ours / baseline")
    header = ["part", "images", "Mpx avg", "issue", "shared", "fast", "/issue", "/shared", "exact", "/issue", "/shared"]
    print(f"{header[0]:<24}" + "".join(f"{h:>8}" for h in header[1:]))
    for name, group in parts.items():
        if not group:
            continue
        issue, shared = rate(group, "issue baseline"), rate(group, "shared-decode baseline")
        cells = [
            f"{len(group)}",
            f"{statistics.fmean(s.pixels for s in group) / 1e6:.1f}",
            f"{issue:.1f}",
            f"{shared:.1f}",
        ]
        for mode in ("fast", "exact"):
            ours = rate(group, mode)
            cells += [f"{ours:.1f}", f"{ours / issue:.2f}x", f"{ours / shared:.2f}x"]
        print(f"{name:<24}" + "".join(f"{c:>8}" for c in cells))

    opaque = [s for s in samples if not s.transparent]
    print("\nBit differences from imagehash.phash(Image.open(file)), images without transparency")
    for mode in ("fast", "exact"):
        for name, group in (("JPEG", jpeg), ("all without transparency", opaque)):
            diffs = [hamming(getattr(s, mode), s.reference) for s in group]
            print(f"  {mode:<6}{name:<26}{len(group):>5} images  {diff_distribution(diffs)}")
    print("Bit differences from imagehash.phash of the picture a viewer sees (bench/README.md)")
    for mode in ("fast", "exact"):
        for name, group in (("with transparency", [s for s in samples if s.transparent]), ("all", samples)):
            diffs = [hamming(getattr(s, mode), s.displayed_reference) for s in group]
            print(f"  {mode:<6}{name:<26}{len(group):>5} images  {diff_distribution(diffs)}")

    clipart = [s for s in samples if s.package == "openclipart-png"]
    if clipart:
        print(f"\nVariant groups at distance <= {VARIANT_DISTANCE} among {len(clipart)} clip-art images")
        raw = [s.reference for s in clipart]
        print(
            f"  imagehash.phash(file):            {sum(h == 0 for h in raw):>4} hash to 0,"
            f" largest group {len(largest_group(raw, VARIANT_DISTANCE))} images"
        )
        for label, degenerate_out in (("ours (fast), all hashes", False), ("ours (fast), degenerate left out", True)):
            kept = [s for s in clipart if not (degenerate_out and is_degenerate(s.fast))]
            group = [kept[i] for i in largest_group([s.fast for s in kept], VARIANT_DISTANCE)]
            names = ", ".join(Path(s.path).name for s in group[:4]) + (", ..." if len(group) > 4 else "")
            print(f"  {label:<33}{len(clipart) - len(kept):>4} left out, largest group {len(group)} images: {names}")
    ones = Counter(s.fast.bit_count() for s in samples)
    print("\nSet bits per hash (ours, fast): " + ", ".join(f"{k}: {v}" for k, v in sorted(ones.items())))
    for package in dict.fromkeys(s.package for s in samples):
        group = [s for s in samples if s.package == package]
        print(f"  degenerate in {package:<30}{sum(is_degenerate(s.fast) for s in group):>4} of {len(group)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / ".corpus", help="where packages are unpacked")
    parser.add_argument("--packages", nargs="*", default=list(PACKAGES), help="Debian packages to draw images from")
    parser.add_argument("--clipart", type=int, default=400, help="how many openclipart-png images to sample")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all), for a quick run")
    parser.add_argument("--repeat", type=int, default=1, help="time each pipeline N times per image, keep the fastest")
    defaults = Settings.model_fields
    parser.add_argument("--thumbnail", type=int, default=defaults["thumbnail_size"].default,
                        help="thumbnail size, as PAKTUM_THUMBNAIL_SIZE")  # fmt: skip
    parser.add_argument("--small", type=int, default=defaults["thumbnail_small_size"].default,
                        help="the smaller thumbnail, as PAKTUM_THUMBNAIL_SMALL_SIZE (0: none)")  # fmt: skip
    parser.add_argument("--results", type=Path, default=HERE / ".results" / "hasher.json", help="per-image results")
    args = parser.parse_args()
    # The baselines hand imagehash palette images with transparency as they are, which Pillow warns about.
    warnings.filterwarnings("ignore", "Palette images with Transparency", UserWarning)

    packages = {name: (args.clipart if name == "openclipart-png" else PACKAGES.get(name)) for name in args.packages}
    fetch_corpus(args.corpus, packages)
    samples = collect(args.corpus, packages)
    if args.limit:
        samples = samples[: args.limit]
    print(f"corpus: {len(samples)} distinct images from {', '.join(packages)}", file=sys.stderr)
    measured = measure(args.corpus, samples, args.thumbnail, args.small, args.repeat)
    report(measured, args.thumbnail, args.small)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps([asdict(s) for s in measured], indent=1))
    print(f"\nper-image results: {args.results}")


if __name__ == "__main__":
    main()
