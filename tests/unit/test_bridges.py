"""Groups that images without colour bridge (paktum_cleanup.bridges): split where the coloured parts' hues
disagree, each image without hue with the part of the nearest image it links to."""

from __future__ import annotations

import numpy as np

from paktum_cleanup import variants
from paktum_cleanup.bridges import unbridged
from paktum_common.hues import FLOOR_BYTE, HUES_LENGTH

GREEN, YELLOW, GREY = 0, 1, 2


def marks(kinds: list[int]) -> np.ndarray:
    """A hue mark per image: all of its chroma in hue 3 (green), in hue 1 (yellow), or none (grey)."""
    rows = np.zeros((len(kinds), HUES_LENGTH), dtype=np.uint8)
    for i, kind in enumerate(kinds):
        if kind != GREY:
            rows[i, 0] = 120
            rows[i, 1 + (3 if kind == GREEN else 1)] = 255
    return rows


def split(kinds: list[int], edges: dict[tuple[int, int], int]) -> list[int]:
    pairs = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    labels = variants.component_labels(len(kinds), pairs)
    return unbridged(labels, pairs, marks(kinds), lambda i, j: edges[(min(i, j), max(i, j))]).tolist()


def test_a_grey_copy_goes_with_the_picture_it_is_nearest_and_its_own_copies_follow_it() -> None:
    # 0, 1: a lime and its crop; 2: a lemon; 3: a grey copy of the lime, 2 bits from it and 6 from the lemon;
    # 4: a mirror of that grey copy (linked to it alone, through an alternate); 5: an unrelated image alone.
    kinds = [GREEN, GREEN, YELLOW, GREY, GREY, GREEN]
    edges = {(0, 1): 8, (0, 3): 2, (2, 3): 6, (3, 4): 4}
    assert split(kinds, edges) == [0, 0, -1, 0, 0, -1]  # the lemon left alone: in no group


def test_the_nearest_decides_whichever_part_is_older() -> None:
    kinds = [GREEN, YELLOW, GREY]
    assert split(kinds, {(0, 2): 7, (1, 2): 3}) == [-1, 1, 1]
    assert split(kinds, {(0, 2): 5, (1, 2): 5}) == [0, -1, 0]  # a tie: the older part


def test_parts_that_agree_stay_one_group_and_images_without_hue_do_not_split() -> None:
    assert split([GREEN, GREY, GREEN], {(0, 1): 3, (1, 2): 3}) == [0, 0, 0]
    assert split([GREY, GREY, GREY], {(0, 1): 3, (1, 2): 3}) == [0, 0, 0]
    # Coloured images linked among themselves: already split by the pairs (no pair between other hues).
    assert split([GREEN, GREEN, YELLOW, YELLOW], {(0, 1): 3, (2, 3): 3}) == [0, 0, 2, 2]


def test_a_group_relabelled_by_its_smallest_index() -> None:
    # The grey image 0 joins the lemon's part (labelled 2 among coloured images): the group is labelled 0.
    kinds = [GREY, GREEN, YELLOW, YELLOW]
    assert split(kinds, {(0, 1): 9, (0, 2): 1, (2, 3): 4}) == [0, -1, 0, 0]


def test_group_variants_splits_by_the_distance_the_pairs_link_at() -> None:
    lime = 0x0F0F_F0F0_3C3C_C3C3
    lemon = lime ^ 0b1111  # 4 bits from the lime
    grey = lime ^ 0b1  # 1 bit from the lime, 3 from the lemon
    hashes = np.array([lime, lemon, grey], dtype=np.uint64)
    rows = marks([GREEN, YELLOW, GREY])
    assert rows[2, 0] < FLOOR_BYTE <= rows[0, 0]
    plain = variants.group_variants(hashes, 10, "numpy")
    assert plain.labels.tolist() == [0, 0, 0] and plain.pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    for method in ("numpy", "brute", variants.available_method()):
        grouping = variants.group_variants(hashes, 10, method, hues=rows)
        assert grouping.pairs.tolist() == [[0, 2], [1, 2]], method  # the lime and the lemon do not pair
        assert grouping.labels.tolist() == [0, -1, 0], method
        assert [g.tolist() for g in grouping.groups()] == [[0, 2]], method


def test_parts_of_one_colour_stay_together_when_another_colour_is_split_off() -> None:
    # A grey hub (0) links two lime copies that do not link each other (1, 2: a heavy watermark) and a lemon (3).
    kinds = [GREY, GREEN, GREEN, YELLOW]
    assert split(kinds, {(0, 1): 2, (0, 2): 6, (0, 3): 5}) == [0, 0, 0, -1]
    # Many parts, one colour but for one: one group of all but the odd one out, whose hub is nearest the limes.
    many = [GREY, *([GREEN] * 300), YELLOW]
    edges = {(0, i): 3 for i in range(1, 302)}
    assert split(many, edges) == [0] * 301 + [-1]
