"""Synthetic image documents for index tests: numbered, distinct, and valid (no files behind them)."""

from __future__ import annotations

from paktum_common.contracts import ImageDocument, Rating


def synthetic(
    n: int,
    tags: str | list[str] = "t",
    *,
    rating: Rating = Rating.safe,
    added: int = 1_700_000_000,
    width: int = 640,
) -> ImageDocument:
    """Document number `n`: ID `n` in 32 hex digits, added `added + n`, a pHash near the top of the range."""
    md5 = f"{n:032x}"
    tag_list = tags.split() if isinstance(tags, str) else tags
    return ImageDocument(
        ID=md5, Tags=tag_list, Tagstring=" ".join(tag_list), Rating=rating, Added=str(added + n),
        PHash=(1 << 64) - 1 - n, Size=100 + n, Width=width, Height=480, Filename=f"{md5}.jpg",
    )  # fmt: skip
