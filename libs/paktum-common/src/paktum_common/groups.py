"""Variant groups: images whose pHashes differ in at most PAKTUM_VARIANT_DISTANCE bits.

The cleanup issue computes and stores the groups; this module is the one place that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from paktum_common import keys


async def related_many(
    redis: Redis, ids: Sequence[str], max_distance: int | None = None
) -> dict[str, list[tuple[str, int]]]:
    """For each ID, the other members of its group as (ID, Hamming distance to it), nearest first.

    One round trip for all IDs, so a GraphQL page of images costs one call, not one per image.
    Until the cleanup issue fills the groups, no image has related images.
    """
    return {image_id: [] for image_id in ids}


def not_variants_member(a: str, b: str) -> str:
    """The one spelling of a pair in NOT_VARIANTS, whichever order the two IDs come in."""
    first, second = sorted((a, b))
    return f"{first}:{second}"


async def mark_not_variants(redis: Redis, a: str, b: str) -> bool:
    """Record that two images are not variants, so grouping never links them; True if it was new."""
    return bool(await redis.sadd(keys.NOT_VARIANTS, not_variants_member(a, b)))


async def group_count(redis: Redis) -> int:
    """How many variant groups there are. Until the cleanup issue fills the groups, there are none."""
    return 0
