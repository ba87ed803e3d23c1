"""Variant recall benchmark: real pictures and known variants of each kind, Paktum beside imagehash and PDQ.

The pictures are the hasher bench's corpus (Debian wallpapers and clip art, apt-get download + dpkg -x into
bench/.corpus, see bench/hasher.py). From each picture it makes one variant of each kind: re-encoded, resized,
cropped (3% and 10% of each side's length, half from each end), brighter, grey, watermarked, mirrored, rotated
by 90, 180 and 270 degrees, and for a transparent picture a JPEG of it flattened on white and one flattened on
black. Then, for each hasher at its usual threshold, it prints the recall per kind (how many variants match
their picture), the false pairs (files of two distinct pictures that match) and the CPU time per image:

Pictures a package ships in several sizes count once. False pairs are counted two ways: pairs of distinct
pictures that any two of their files link (what a user sees as a wrong "related"), and pairs of files.
A variant that is blank (one flat grey at the 32x32 that pHash looks at, or made from a picture that is: an
overlay wallpaper whose colours only show on a dark desktop, seen on white; black line art flattened on black)
has nothing of its picture in it for any hasher to find: it is set apart from every hasher's recall, and
counted. With
--misses, Paktum's misses are listed per kind, with the distance and what the degenerate rule refused.

- paktum: the hasher's decode (fast mode), matched as the registry and the regroup match (paktum_common.phash.match):
  a pair one of whose pictures is symmetric by their symmetric hashes alone, within SYMMETRIC_DISTANCE (4 bits;
  a radial picture's is its radial hash, its number of points and profile, or degenerate when its number of
  points is not read, so that it links to nothing: paktum_common.dct_hash); any other pair by pHash
  within 10 bits directly, or within 6 through an alternate of either side: mirrored, rotated, flattened on the
  other background (ALTERNATE_PENALTY);
- paktum phash: the same without the symmetric rule (Paktum before it, and images hashed before it);
- paktum plain: the pHashes alone, without alternates (Paktum before them);
- paktum groups, plain groups: what the api shows after `paktum cleanup` by the live rule and by plain pHash:
  every image related to every other of its variant group (connected components), so one false pair between two
  pictures relates all their files;
- --sample K keeps K variants of each picture drawn at random (a collection's one or two copies of a picture, as
  the issue's corpus of 287 pictures and 436 variants had), where one false pair costs fewer file pairs;
- --held-out N takes N other openclipart-png pictures, drawn at random outside the sample, which no threshold was
  chosen on (the checker's corpus is other pictures too);
- imagehash: imagehash.phash of the file as opened, within 10 bits;
- pdq, pdq dihedral: pdqhash.compute / compute_dihedral, within 31 bits of 256 (the dihedral hashes of one side
  against the plain hash of the other, both ways), of the file as opened (alpha dropped);
- pdq dih. seen: compute_dihedral of the picture as a viewer sees it (a transparent one flattened on white first).

    make bench-variants                 # or: .venv/bin/python bench/variants.py --help (pdqhash: the bench group)
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from hasher import HERE, Sample, collect, fetch_corpus
from PIL import Image, ImageDraw, ImageEnhance

from paktum_cleanup.bridges import unbridged
from paktum_cleanup.variants import component_labels
from paktum_common.dct_hash import PictureHashes
from paktum_common.hues import HUES_LENGTH, hue_agreement
from paktum_common.phash import (
    ALTERNATE_PENALTY,
    NEIGHBOUR_KEEP,
    SIGNATURE_KEEP,
    SIGNATURE_LENGTH,
    SIGNATURE_MARGIN,
    SIMHASH_DISTANCE,
    SYMMETRIC_DISTANCE,
    coefficients_of,
    fragile_rows,
    hues_of,
    is_degenerate,
    is_degenerate_symmetric,
    simhashes,
)
from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from paktum_hasher.phash import bits_to_int

PACKAGES: dict[str, int | None] = {"gnome-backgrounds": None, "mate-backgrounds": None, "openclipart-png": 250}
MAX_PIXELS = 120_000_000
ORIGINAL_SIDE = 1600
SIZE_SUFFIX = re.compile(r"[_-]?\d+x\d+$")
KINDS = ("reencode", "resize", "crop3", "crop10", "brightness", "grey", "watermark",
         "mirror", "rot90", "rot180", "rot270", "flat_white", "flat_black")  # fmt: skip
TURN = Image.Transpose
PHASH_DISTANCE = 10
PDQ_DISTANCE = 31
HASHER_DEFAULTS = {name: Settings.model_fields[name].default for name in ("thumbnail_size", "phash_mode")}


@dataclass
class File:
    picture: int  # which picture it shows
    kind: str  # "original" or one of KINDS
    data: bytes
    blank: bool = False  # nothing of the picture in it for any hasher (set apart from recall)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def flatten(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, colour)
    flat.paste(rgba, (0, 0), rgba)
    return flat


def is_transparent(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def crop(image: Image.Image, percent: float) -> Image.Image:
    dx, dy = round(image.width * percent / 200), round(image.height * percent / 200)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def flat(image: Image.Image) -> bool:
    """One flat grey at the 32x32 pHash reduces a picture to: there is nothing in it for any hasher to find."""
    grey = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    return int(np.ptp(np.asarray(grey))) == 0


def watermark(image: Image.Image) -> Image.Image:
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = marked.size
    # A site's mark in the lower right corner: a faint band a fifth of the width, with its name.
    box = (int(w * 0.77), int(h * 0.93), int(w * 0.98), int(h * 0.98))
    draw.rectangle(box, fill=(255, 255, 255, 90))
    draw.text((box[0] + 4, box[1] + 2), "paktum.example", fill=(0, 0, 0, 170))
    return Image.alpha_composite(marked, layer).convert("RGB")


def variants_of(data: bytes) -> tuple[bytes, dict[str, bytes], bool, set[str]]:
    """The original (a large wallpaper scaled to fit ORIGINAL_SIDE, to keep the run short), each kind's variant
    of it, whether the picture is transparent, and the kinds that are blank: made from a picture that is flat as
    seen (an overlay wallpaper whose colours only show on a dark desktop, on white), or flat themselves."""
    image = Image.open(io.BytesIO(data))
    image.load()
    transparent = is_transparent(image)
    if max(image.size) > ORIGINAL_SIDE:
        image = image.convert("RGBA" if transparent else "RGB")
        image.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "PNG") if transparent else image.save(out, "JPEG", quality=95)
        data = out.getvalue()
    seen = flatten(image, (255, 255, 255)) if transparent else image.convert("RGB")
    made = {
        "reencode": jpeg(seen, 70),
        "resize": jpeg(seen.resize((max(1, seen.width // 2), max(1, seen.height // 2)), Image.Resampling.LANCZOS)),
        "crop3": jpeg(crop(seen, 3)),
        "crop10": jpeg(crop(seen, 10)),
        "brightness": jpeg(ImageEnhance.Brightness(seen).enhance(1.25)),
        "grey": jpeg(seen.convert("L")),
        "watermark": jpeg(watermark(seen)),
        "mirror": jpeg(seen.transpose(TURN.FLIP_LEFT_RIGHT)),
        "rot90": jpeg(seen.transpose(TURN.ROTATE_90)),
        "rot180": jpeg(seen.transpose(TURN.ROTATE_180)),
        "rot270": jpeg(seen.transpose(TURN.ROTATE_270)),
    }
    if transparent:
        made["flat_white"] = jpeg(flatten(image, (255, 255, 255)))
        made["flat_black"] = jpeg(flatten(image, (0, 0, 0)))
    blank = {k for k in made if k != "flat_black"} if flat(seen) else set()
    blank |= {k for k, variant in made.items() if flat(Image.open(io.BytesIO(variant)))}
    return data, made, transparent, blank


# ---- the hashers: each gives, per file, a matrix row set the pair search below understands ----------------


def paktum(data: bytes) -> PictureHashes:
    """The hashes the hasher stores, at its default settings: in the fast mode a JPEG is decoded at the thumbnail's
    scale, which moves bits (an earlier bench decoded at 300 px, and disagreed with the api on 2 of 682 files)."""
    decoded = decode_image(data, MAX_PIXELS, HASHER_DEFAULTS["thumbnail_size"], HASHER_DEFAULTS["phash_mode"])
    return decoded.hashes


def imagehash_phash(data: bytes) -> int:
    return bits_to_int(imagehash.phash(Image.open(io.BytesIO(data))).hash)


def pdq_words(bits: np.ndarray) -> np.ndarray:
    """256 PDQ bits as 4 unsigned 64-bit words."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1))
    return np.frombuffer(packed.tobytes(), dtype=">u8").astype(np.uint64)


def pdq_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pdq_seen_dihedral(data: bytes) -> np.ndarray:
    """PDQ's dihedral hashes of the picture as a viewer sees it: a transparent one flattened on white first (what
    PDQ gets from a caller who does that for it, as Paktum's hasher does for itself)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    seen = flatten(image, (255, 255, 255)) if is_transparent(image) else image
    return dihedral_words(np.asarray(seen.convert("RGB")))


def pdq_plain(data: bytes) -> np.ndarray:
    import pdqhash

    return pdq_words(pdqhash.compute(pdq_rgb(data))[0])


def pdq_dihedral(data: bytes) -> np.ndarray:
    return dihedral_words(pdq_rgb(data))


def dihedral_words(rgb: np.ndarray) -> np.ndarray:
    """pdqhash.compute_dihedral's 8 hashes of an RGB array, as words: the plain hash first."""
    import pdqhash

    hashes, _ = pdqhash.compute_dihedral(rgb)
    return np.stack([pdq_words(h) for h in hashes])


def timed_map(func: Callable[[bytes], object], files: list[File]) -> tuple[list[object], float]:
    """Each file's hash, and the CPU seconds per file."""
    results = []
    started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for f in files:
            results.append(func(f.data))
    return results, (time.process_time() - started) / max(1, len(files))


# ---- distances between every two files -------------------------------------------------------------------


def min_distances(
    plain: np.ndarray, extra: np.ndarray, usable: np.ndarray, penalty: int = 0, plain_too: bool = True
) -> np.ndarray:
    """(n, n) least distance: plain against plain (unless not `plain_too`), and each of one side's extra hashes
    against the other's plain (`penalty` bits added to those: a stricter distance for matches through an extra hash).

    plain: (n, w) words; extra: (n, k, w) words (k may be 0); unusable rows and columns are 10**6.
    """
    n = plain.shape[0]
    best = np.zeros((n, n), dtype=np.int64)
    for word in range(plain.shape[1]):
        best += np.bitwise_count(plain[:, None, word] ^ plain[None, :, word])
    if not plain_too:
        best[:] = 10**6
    for slot in range(extra.shape[1]):
        through = np.full((n, n), penalty, dtype=np.int64)
        for word in range(plain.shape[1]):
            through += np.bitwise_count(extra[:, None, slot, word] ^ plain[None, :, word])
        best = np.minimum(best, np.minimum(through, through.T))
    best[~usable, :] = 10**6
    best[:, ~usable] = 10**6
    return best


def paktum_matrix(
    results: list[tuple[int, tuple[int, ...]]], alternates: bool, penalty: int = 0, plain_too: bool = True
) -> np.ndarray:
    plain = np.array([[r[0]] for r in results], dtype=np.uint64)
    width = max((len(r[1]) for r in results), default=0) if alternates else 0
    extra = np.zeros((len(results), width, 1), dtype=np.uint64)
    for i, (own, alts, *_) in enumerate(results):
        for slot in range(width):
            # A missing or degenerate alternate stands in as the plain hash: it adds nothing.
            value = alts[slot] if slot < len(alts) and not is_degenerate(alts[slot]) else own
            extra[i, slot, 0] = value
    usable = np.array([not is_degenerate(r[0]) for r in results])
    return min_distances(plain, extra, usable, penalty, plain_too)


def signed_matrix(results: list[PictureHashes], threshold: int) -> np.ndarray:
    """paktum_matrix's distances with alternates, by the signature rule (paktum_common.phash.match at `threshold`):
    a plain pair links as plain_links says by the two signatures' cosine, a pair through an alternate within
    alternate_distance; one that links by neither is 10**6."""
    plain = paktum_matrix(results, False)  # type: ignore[arg-type]
    through = paktum_matrix(results, True, ALTERNATE_PENALTY, plain_too=False)  # type: ignore[arg-type]
    marks, signed = coefficient_rows(results)
    cosine = cosine_matrix(marks)
    both = signed[:, None] & signed[None, :]
    links = (plain <= threshold) & ((plain <= threshold - SIGNATURE_MARGIN) | ~both | (cosine >= SIGNATURE_KEEP))
    by_plain = np.where(links, plain, 10**6)
    return np.minimum(by_plain, np.where(through <= threshold, through, 10**6))


def live_matrix(results: list[PictureHashes], hues: bool = True, neighbours: bool = True) -> np.ndarray:
    """The live rule's distances (the regroup, search by image, ingest linking): the signature rule, then the
    symmetric one, then (unless not `neighbours`) signature neighbours, then (unless not `hues`) no link between two
    pictures whose hue marks disagree (paktum_common.hues)."""
    distances = symmetric_matrix(results, signed_matrix(results, PHASH_DISTANCE))
    if neighbours:
        distances = np.where(neighbour_matrix(results), np.minimum(distances, PHASH_DISTANCE), distances)
    if not hues:
        return distances
    rows = hue_rows(results)
    agree = np.stack([hue_agreement(np.broadcast_to(row, rows.shape), rows) for row in rows])
    return np.where(agree, distances, 10**6)


def neighbour_matrix(results: list[PictureHashes]) -> np.ndarray:
    """(n, n) whether two files' signatures are neighbours (paktum_common.phash.signature_neighbours), neither
    symmetric: linked whatever their bits (at the edge of the distance here, as the regroup weighs them)."""
    marks, signed = coefficient_rows(results)
    usable = signed & ~np.array([r.symmetric for r in results], dtype=bool) & fragile_rows(marks)
    codes = simhashes(marks)
    near = (np.bitwise_count(codes[:, None] ^ codes[None, :]) <= SIMHASH_DISTANCE) & (
        cosine_matrix(marks) >= NEIGHBOUR_KEEP
    )
    return near & usable[:, None] & usable[None, :]


def coefficient_rows(results: list[PictureHashes]) -> tuple[np.ndarray, np.ndarray]:
    """Every file's signature coefficients ((n, SIGNATURE_LENGTH) whole numbers, zeros for none) and which have one."""
    marks = np.zeros((len(results), SIGNATURE_LENGTH), dtype=np.int64)
    signed = np.zeros(len(results), dtype=bool)
    for i, r in enumerate(results):
        if coefficients := coefficients_of(r.signature):
            marks[i], signed[i] = np.frombuffer(coefficients, dtype=np.int8), True
    return marks, signed


def cosine_matrix(marks: np.ndarray) -> np.ndarray:
    """(n, n) cosines of every two rows of coefficients, as paktum_common.phash.signature_cosine computes one (0 for
    a row of zeros)."""
    squares = np.einsum("ij,ij->i", marks, marks)
    norm = np.sqrt((squares[:, None] * squares[None, :]).astype(np.float64))
    return (marks @ marks.T) / np.where(norm > 0, norm, 1.0)


def hue_rows(results: list[PictureHashes]) -> np.ndarray:
    """Every file's hue mark (paktum_common.hues), a row of zeros for none: as the regroup reads them."""
    marks = b"".join(hues_of(r.signature) or bytes(HUES_LENGTH) for r in results)
    return np.frombuffer(marks, dtype=np.uint8).reshape(len(results), HUES_LENGTH)


def symmetric_matrix(results: list[PictureHashes], usual: np.ndarray) -> np.ndarray:
    """The live rule (paktum_common.phash.match): `usual` (paktum_matrix's distances), except that a pair one of
    whose pictures is symmetric is measured by the symmetric hashes alone (any usable one of one side against any
    of the other's), a match only within SYMMETRIC_DISTANCE."""
    n = len(results)
    width = max((len(r.symmetric_hashes) for r in results), default=1)
    values = np.zeros((n, width), dtype=np.uint64)
    usable = np.zeros((n, width), dtype=bool)
    for i, r in enumerate(results):
        for slot, value in enumerate(r.symmetric_hashes):
            values[i, slot], usable[i, slot] = value, not is_degenerate_symmetric(value)
    bits = np.full((n, n), 10**6, dtype=np.int64)
    for p in range(width):
        for q in range(width):
            apart = np.bitwise_count(values[:, None, p] ^ values[None, :, q]).astype(np.int64)
            bits = np.minimum(bits, np.where(usable[:, None, p] & usable[None, :, q], apart, 10**6))
    measured = np.where(bits <= SYMMETRIC_DISTANCE, bits, 10**6)
    symmetric = np.array([r.symmetric for r in results])
    return np.where(symmetric[:, None] | symmetric[None, :], measured, usual)


def counted(files: list[File]) -> list[int]:
    """The variants recall is measured on: those that are not blank."""
    return [i for i, f in enumerate(files) if f.kind != "original" and not f.blank]


def print_misses(results: list[tuple[int, tuple[int, ...]]], distances: np.ndarray, files: list[File],
                 names: dict[int, str], row: str = "paktum") -> None:  # fmt: skip
    """Paktum's misses, per kind: which picture, how far, and whether the degenerate rule refused a side."""
    original = {f.picture: i for i, f in enumerate(files) if f.kind == "original"}
    print(f"\n{row}'s misses (distance through the nearest alternate; 'degenerate': a plain hash refused):")
    for kind in KINDS:
        for i in (i for i in counted(files) if files[i].kind == kind):
            o = original[files[i].picture]
            if distances[o, i] <= PHASH_DISTANCE:
                continue
            refused = [side for side, k in (("original", o), ("variant", i)) if is_degenerate(results[k][0])]
            refused = refused if distances[o, i] >= 10**6 else []  # the symmetric rule may have measured them
            bits = ", ".join(str(results[k][0].bit_count()) for k in (o, i))
            why = f"degenerate {' and '.join(refused)} ({bits} bits set)" if refused else f"{distances[o, i]} bits"
            print(f"  {kind:<10} {names[files[i].picture]:<44} {why}")


def report(name: str, distances: np.ndarray, threshold: int, files: list[File], seconds: float) -> dict[str, float]:
    close = distances <= threshold
    pictures = np.array([f.picture for f in files])
    original = {f.picture: i for i, f in enumerate(files) if f.kind == "original"}
    recall: dict[str, float] = {}
    for kind in KINDS:
        members = [i for i in counted(files) if files[i].kind == kind]
        if members:
            recall[kind] = sum(bool(close[original[files[i].picture], i]) for i in members) / len(members)
    distinct = pictures[:, None] != pictures[None, :]
    false_files = np.triu(close & distinct, 1)
    false_pairs = int(false_files.sum())
    # Two distinct pictures that any of their files link: a false link a user would see.
    linked = {(int(pictures[i]), int(pictures[j])) for i, j in zip(*np.nonzero(false_files), strict=True)}
    false_pictures = len({(min(a, b), max(a, b)) for a, b in linked})
    cells = " ".join(f"{recall.get(kind, float('nan')):>6.2f}" for kind in KINDS)
    print(
        f"{name:<14} {threshold:>3} | {cells} | {false_pictures:>6} {false_pairs:>7} | {seconds * 1000:>7.1f}",
        flush=True,
    )
    return recall


def print_header() -> None:
    """The header of report()'s rows."""
    print(f"{'hasher':<14} {'max':>3} | " + " ".join(f"{k[:6]:>6}" for k in KINDS) + " | false: pics  files | ms/image")
    print("-" * (24 + 7 * len(KINDS) + 20))


def grouped(distances: np.ndarray, threshold: int, hues: np.ndarray | None = None) -> np.ndarray:
    """What the api shows after `paktum cleanup`: every image related to every other of its variant group, the
    connected components of the pairs within `threshold` (the cleanup's own component_labels; with `hues`, split
    where images without colour bridge disagreeing ones, as the regroup splits them: paktum_cleanup.bridges), as a
    distance matrix report() reads (0: in one group)."""
    pairs = np.argwhere(np.triu(distances <= threshold, 1))
    labels = component_labels(distances.shape[0], pairs)
    if hues is not None:
        labels = unbridged(labels, pairs, hues, lambda i, j: int(distances[i, j]))
    labels[labels < 0] = -1 - np.flatnonzero(labels < 0)  # an image in no group is alone
    return np.where(labels[:, None] == labels[None, :], 0, 10**6)


def sampled(files: list[File], per_picture: int, seed: int) -> list[File]:
    """Each picture's original and `per_picture` of its variants drawn at random, as a collection holds one or two
    copies of most pictures rather than one of every kind."""
    rng = random.Random(seed)
    kept: list[File] = []
    for _, group in itertools.groupby(files, key=lambda f: f.picture):
        original, *made = group
        kept += [original, *rng.sample(made, min(per_picture, len(made)))]
    return kept


def sample_pictures(corpus: Path, packages: dict[str, int | None] = PACKAGES) -> list[Sample]:
    """The sample's pictures (fetched into `corpus` first), taken in turn from each package, so that --limit keeps
    the mix of wallpapers and clip art. A package ships one picture in several sizes (Elephants.jpg,
    Elephants_3840x2160.jpg; or Kay/contents/images/1920x1080.png beside 3840x2160.png): one picture."""
    fetch_corpus(corpus, packages)
    by_package: dict[str, list[Sample]] = {}
    named: set[tuple[str, str]] = set()
    for sample in collect(corpus, packages):
        path = Path(sample.path)
        stem = SIZE_SUFFIX.sub("", path.stem)
        name = (sample.package, stem if stem else str(path.parent))  # a file named by its size alone: its folder
        if name not in named:
            named.add(name)
            by_package.setdefault(sample.package, []).append(sample)
    return [s for row in itertools.zip_longest(*by_package.values()) for s in row if s is not None]


def held_out_pictures(corpus: Path, count: int, seed: int) -> list[Sample]:
    """`count` openclipart-png pictures outside sample_pictures' sample, drawn at random (`seed`): pictures no rule
    was tuned on (the sample takes 250 of the package's 8,121 files)."""
    taken = {Path(s.path).name for s in sample_pictures(corpus)}
    others = [s for s in collect(corpus, {"openclipart-png": None}) if Path(s.path).name not in taken]
    random.Random(seed).shuffle(others)
    return others[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / ".corpus", help="where packages are unpacked")
    parser.add_argument("--limit", type=int, default=0, help="at most this many pictures (0: all)")
    parser.add_argument("--misses", action="store_true", help="list Paktum's misses per kind")
    parser.add_argument(
        "--alternate-distance", type=int, metavar="N", action="append", default=[],
        help="also a row for Paktum with matches through an alternate counted only within N bits (what-if; "
        "may be given more than once)",
    )  # fmt: skip
    parser.add_argument(
        "--sample",
        type=int,
        metavar="K",
        default=0,
        help="keep only K variants of each picture, drawn at random (0: every kind)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the draw of --sample (and of --held-out)")
    parser.add_argument(
        "--held-out", type=int, metavar="N", default=0,
        help="N other openclipart-png pictures, drawn at random outside the sample, instead of it",
    )  # fmt: skip
    parser.add_argument(
        "--packages", nargs="+", metavar="PACKAGE", default=[],
        help="every picture of these Debian packages (apt-get download), instead of the sample: other pictures, "
        "e.g. plasma-workspace-wallpapers",
    )  # fmt: skip
    args = parser.parse_args()
    if args.packages:
        samples = sample_pictures(args.corpus, dict.fromkeys(args.packages))
    elif args.held_out:
        samples = held_out_pictures(args.corpus, args.held_out, args.seed)
    else:
        samples = sample_pictures(args.corpus)
    files: list[File] = []
    names: dict[int, str] = {}
    transparent = 0
    for sample in samples:
        if args.limit and len(files) and files[-1].picture + 1 >= args.limit:
            break
        data = (args.corpus / sample.path).read_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                data, made, is_transparent, blank = variants_of(data)
        except OSError:
            continue
        picture = files[-1].picture + 1 if files else 0
        transparent += is_transparent
        names[picture] = f"{sample.package}/{Path(sample.path).name}"
        files.append(File(picture, "original", data))
        files += [File(picture, kind, variant, kind in blank) for kind, variant in made.items()]
    if args.sample:
        files = sampled(files, args.sample, args.seed)
    pictures = files[-1].picture + 1 if files else 0
    print(f"{pictures} pictures ({transparent} transparent), {len(files) - pictures} variants, {len(files)} files;")
    apart = len(files) - pictures - len(counted(files))
    print(f"{apart} variants set apart from recall as blank (made from a picture flat as seen, or flat themselves);")
    print("recall per kind; false pairs: pairs of distinct pictures linked by any of their files, and pairs of")
    print("files of distinct pictures that match; CPU ms per image\n")
    print_header()

    ours, seconds = timed_map(paktum, files)
    by_phash = paktum_matrix(ours, True, ALTERNATE_PENALTY)  # type: ignore[arg-type]
    distances = live_matrix(ours)  # type: ignore[arg-type]
    recalls = {"paktum": report("paktum", distances, PHASH_DISTANCE, files, seconds)}
    hueless = live_matrix(ours, hues=False, neighbours=False)  # type: ignore[arg-type]
    report("paktum no hues", hueless, PHASH_DISTANCE, files, seconds)
    alone = live_matrix(ours, neighbours=False)  # type: ignore[arg-type]
    report("no neighbours", alone, PHASH_DISTANCE, files, seconds)
    unsigned = symmetric_matrix(ours, by_phash)  # type: ignore[arg-type]
    report("paktum unsigned", unsigned, PHASH_DISTANCE, files, seconds)
    report("paktum phash", by_phash, PHASH_DISTANCE, files, seconds)
    plain_pairs = paktum_matrix(ours, False)  # type: ignore[arg-type]
    report("paktum plain", plain_pairs, PHASH_DISTANCE, files, seconds)
    report("paktum groups", grouped(distances, PHASH_DISTANCE, hue_rows(ours)), PHASH_DISTANCE, files, seconds)  # type: ignore[arg-type]
    report("no hues groups", grouped(hueless, PHASH_DISTANCE), PHASH_DISTANCE, files, seconds)
    report("no neigh. groups", grouped(alone, PHASH_DISTANCE, hue_rows(ours)), PHASH_DISTANCE, files, seconds)  # type: ignore[arg-type]
    report("unsigned groups", grouped(unsigned, PHASH_DISTANCE), PHASH_DISTANCE, files, seconds)
    report("plain groups", grouped(plain_pairs, PHASH_DISTANCE), PHASH_DISTANCE, files, seconds)
    for alternate_distance in args.alternate_distance:
        stricter = paktum_matrix(ours, True, PHASH_DISTANCE - alternate_distance)  # type: ignore[arg-type]
        stricter = symmetric_matrix(ours, stricter)  # type: ignore[arg-type]
        report(f"paktum alt {alternate_distance}", stricter, PHASH_DISTANCE, files, seconds)
    theirs, seconds = timed_map(imagehash_phash, files)
    plain = np.array([[h] for h in theirs], dtype=np.uint64)
    usable = np.ones(len(files), dtype=bool)
    report("imagehash", min_distances(plain, np.zeros((len(files), 0, 1), np.uint64), usable), 10, files, seconds)
    try:
        import pdqhash  # noqa: F401
    except ImportError:
        print("\npdqhash is not installed: `uv sync --group bench` (make bench-variants does) for the PDQ rows")
        if args.misses:
            print_misses(ours, distances, files, names)  # type: ignore[arg-type]
        return
    words, seconds = timed_map(pdq_plain, files)
    stacked = np.stack(words)  # type: ignore[arg-type]
    report("pdq", min_distances(stacked, np.zeros((len(files), 0, 4), np.uint64), usable), PDQ_DISTANCE, files,
           seconds)  # fmt: skip
    dihedral, seconds = timed_map(pdq_dihedral, files)
    turned = np.stack(dihedral)  # type: ignore[arg-type]
    recalls["pdq dihedral"] = report(
        "pdq dihedral", min_distances(turned[:, 0], turned[:, 1:], usable), PDQ_DISTANCE, files, seconds
    )
    seen, seconds = timed_map(pdq_seen_dihedral, files)
    turned = np.stack(seen)  # type: ignore[arg-type]
    recalls["pdq dihedral seen"] = report(
        "pdq dih. seen", min_distances(turned[:, 0], turned[:, 1:], usable), PDQ_DISTANCE, files, seconds
    )
    if args.misses:
        print_misses(ours, distances, files, names)  # type: ignore[arg-type]
    for peer in ("pdq dihedral", "pdq dihedral seen"):
        behind = [k for k in KINDS if k in recalls["paktum"] and recalls["paktum"][k] < recalls[peer][k]]
        print(f"\npaktum behind {peer} on: {', '.join(behind) or 'no kind'}", file=sys.stderr)


if __name__ == "__main__":
    main()
