"""The variant bench sets apart the variants that carry nothing of their picture (bench/variants.py)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
variant_bench = pytest.importorskip("variants", reason="the bench's imports (imagehash) are the hasher's")


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def line_art(background: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGBA", (240, 160), background)
    draw = ImageDraw.Draw(image)
    draw.line((10, 10, 230, 150), fill=(0, 0, 0, 255), width=9)
    draw.ellipse((150, 20, 220, 90), outline=(0, 0, 0, 255), width=7)
    return image


def test_black_line_art_flattened_on_black_is_set_apart_and_nothing_else() -> None:
    _, made, transparent, blank = variant_bench.variants_of(png(line_art((0, 0, 0, 0))))
    assert transparent
    assert blank == {"flat_black"}
    assert set(made) == set(variant_bench.KINDS)


def test_a_picture_invisible_on_white_sets_apart_every_kind_made_from_it() -> None:
    # An overlay whose colours sit under an alpha of zero: on white (as a viewer sees it) a blank page.
    overlay = Image.new("RGBA", (200, 120), (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle((20, 20, 120, 100), fill=(200, 30, 30, 0))
    _, made, _, blank = variant_bench.variants_of(png(overlay))
    assert blank == set(made)


def test_an_opaque_picture_has_no_blank_variant() -> None:
    _, made, transparent, blank = variant_bench.variants_of(png(line_art((255, 255, 255, 255)).convert("RGB")))
    assert not transparent and blank == set()
    assert "flat_black" not in made


def test_recall_is_counted_over_the_variants_that_are_not_blank() -> None:
    files = [
        variant_bench.File(0, "original", b""),
        variant_bench.File(0, "mirror", b""),
        variant_bench.File(0, "flat_black", b"", blank=True),
    ]
    assert variant_bench.counted(files) == [1]


def test_a_stricter_alternate_distance_counts_only_the_near_alternates() -> None:
    base = 0x0123_4567_89AB_CDEF
    far = base ^ 0xFFF  # 12 bits from base: no plain match
    # The second image's alternate is 9 bits from the first's plain hash, the third's 10 bits.
    results = [(base, ()), (far, (base ^ 0x1FF,)), (far ^ (0xFFF << 20), (base ^ 0x3FF,))]
    plain_only = variant_bench.paktum_matrix(results, False)
    usual = variant_bench.paktum_matrix(results, True)
    stricter = variant_bench.paktum_matrix(results, True, penalty=1)
    assert plain_only[0, 1] == 12
    assert (usual[0, 1], usual[0, 2]) == (9, 10)
    assert (stricter[0, 1], stricter[0, 2]) == (10, 11)  # within 9 bits through an alternate: only the first


def test_a_pair_with_a_symmetric_side_is_measured_by_the_symmetric_hashes_alone() -> None:
    from paktum_common.dct_hash import PictureHashes
    from paktum_common.phash import SYMMETRIC_DISTANCE

    plain = 0x0123_4567_89AB_CDEF
    star = (1 << 32) - 1  # 32 of 64 bits set: a usable symmetric hash
    near = star ^ (0b1 << 40) ^ (0b1 << 10)  # 2 bits away, still 32 set
    far = star ^ (0b11 << 20)  # two bits cleared: 30 set, unusable
    results = [
        PictureHashes(plain, (), True, (star, 0)),  # a star: its other background flat (0)
        PictureHashes(plain ^ 0xFFFF_FFFF, (), False, (near,)),  # its plain pHash 32 bits away (noise)
        PictureHashes(plain, (), False, (far,)),  # the same plain pHash, a degenerate symmetric hash
        PictureHashes(plain ^ 0xF, (), False, (star,)),  # neither symmetric: the plain rule
    ]
    usual = variant_bench.paktum_matrix(results, True)
    proposed = variant_bench.symmetric_matrix(results, usual)
    assert usual[0, 1] == 32 and proposed[0, 1] == 2  # the bits apart, as paktum_common.phash.match says
    assert usual[0, 2] == 0 and proposed[0, 2] == 10**6  # a symmetric side: the plain pHash no longer counts
    assert proposed[1, 3] == usual[1, 3] and proposed[2, 3] == usual[2, 3] == 4
    beyond = star ^ (0b1 << 40) ^ (0b1 << 10) ^ (0b1 << 41) ^ (0b1 << 11) ^ (0b1 << 42) ^ (0b1 << 12)  # 6 bits
    wider = [results[0], PictureHashes(plain, (), False, (beyond,))]
    assert variant_bench.symmetric_matrix(wider, variant_bench.paktum_matrix(wider, True))[0, 1] == 10**6
    assert SYMMETRIC_DISTANCE < 6


def test_groups_relate_every_file_of_a_chain_and_leave_the_rest_alone() -> None:
    # 0-1 and 1-2 match, 0-2 does not, 3 matches nothing: the cleanup's components make {0, 1, 2} one group.
    far = 10**6
    distances = np.array([[0, 4, far, far], [4, 0, 6, far], [far, 6, 0, far], [far, far, far, 0]])
    related = variant_bench.grouped(distances, 10) <= 10
    assert related[0, 2] and related[2, 0] and not related[0, 3] and not related[3, 1]
    assert related[3, 3]  # an image alone is only its own group


def test_sample_keeps_each_original_and_k_of_its_variants() -> None:
    files = [
        variant_bench.File(picture, kind, b"")
        for picture in range(3)
        for kind in ("original", *variant_bench.KINDS[:5])
    ]
    kept = variant_bench.sampled(files, 2, seed=4)
    assert [f.kind for f in kept if f.kind == "original"] == ["original"] * 3
    for picture in range(3):
        mine = [f for f in kept if f.picture == picture]
        assert len(mine) == 3 and mine[0].kind == "original" and len({f.kind for f in mine}) == 3
    assert variant_bench.sampled(files, 2, seed=4) == kept  # the same draw for the same seed


def test_the_radial_bench_reads_the_number_of_points_a_radial_hash_stands_for() -> None:
    from paktum_common.dct_hash import ORDER_PATTERNS, PictureHashes

    radial_bench = pytest.importorskip("radial")
    profile = 0x0000_FFFF
    assert radial_bench.read_order(PictureHashes(0, (), True, (ORDER_PATTERNS[37] << 32 | profile, 0))) == 37
    assert radial_bench.read_order(PictureHashes(0, (), True, (0,))) == 0  # not read: degenerate
    assert radial_bench.read_order(PictureHashes(0, (), False, (ORDER_PATTERNS[37] << 32,))) == 0  # not symmetric


def test_the_radial_bench_counts_pairs_of_distinct_stars_plain_phash_links() -> None:
    radial_bench = pytest.importorskip("radial")
    base = 0x0123_4567_89AB_CDEF
    # Star 0 has two files, star 1 one file 10 bits from star 0's second file, star 2 one file far from all.
    stars = np.array([0, 0, 1, 2])
    plain = np.array([base, base ^ 0xF, base ^ 0xF ^ 0x3FF << 8, ~base & (2**64 - 1)], dtype=np.uint64)
    assert radial_bench.plain_pairs(stars, plain) == 1


def test_the_api_bench_writes_each_distinct_file_once(tmp_path: Path) -> None:
    api_bench = pytest.importorskip("api_variants")
    original = png(line_art((255, 255, 255, 255)))
    files = [
        variant_bench.File(0, "original", original),
        variant_bench.File(0, "grey", b"\xff\xd8 one jpeg"),
        variant_bench.File(0, "flat_white", b"\xff\xd8 one jpeg"),  # the same bytes: one image in Paktum
        variant_bench.File(1, "original", original),  # a picture whose original is an earlier file: left out
        variant_bench.File(1, "mirror", b"\xff\xd8 another"),
    ]
    kept, names = api_bench.write_files(files, tmp_path)
    assert [f.kind for f in kept] == ["original", "grey"] and names == ["p000_original.png", "p000_grey.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_the_api_bench_reads_search_by_image_as_a_user_would() -> None:
    api_bench = pytest.importorskip("api_variants")
    files = [variant_bench.File(0, "original", b""), variant_bench.File(0, "mirror", b""),
             variant_bench.File(1, "original", b"")]  # fmt: skip
    similar = np.zeros((3, 3), dtype=bool)
    similar[1, 0] = True  # the mirror's search finds its original
    similar[2, 1] = True  # the other picture's search finds the mirror: a false pair, whichever side searched
    distances = api_bench.similar_distances(similar, files)
    assert distances[0, 1] == 0  # read as report() reads it: [original, variant]
    assert distances[1, 2] == distances[2, 1] == 0 and distances[0, 2] == distances[2, 0] > 10


def test_a_package_is_one_picture_per_name_or_per_folder_of_sizes(tmp_path: Path) -> None:
    unpacked = tmp_path / "wallpapers"
    files = {
        "Kay/contents/images/1920x1080.png": (10, 20, 30),
        "Kay/contents/images/3840x2160.png": (10, 20, 30),
        "Kay/contents/images_dark/1920x1080.png": (1, 2, 3),
        "Elephants.png": (40, 50, 60),
        "Elephants_3840x2160.png": (40, 50, 61),
    }
    for name, colour in files.items():
        (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / name).write_bytes(png(Image.new("RGB", (8, 8), colour)))
    (unpacked / ".unpacked").touch()  # as fetched: nothing to download
    pictures = variant_bench.sample_pictures(tmp_path, {"wallpapers": None})
    assert sorted(Path(p.path).relative_to("wallpapers").as_posix() for p in pictures) == [
        "Elephants.png",
        "Kay/contents/images/1920x1080.png",
        "Kay/contents/images_dark/1920x1080.png",
    ]
