"""Variant groups: images whose pHashes differ in at most PAKTUM_VARIANT_DISTANCE bits.

The cleanup issue computes and stores the groups; this module is the one place that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis


async def related_many(
    redis: Redis, ids: Sequence[str], max_distance: int | None = None
) -> dict[str, list[tuple[str, int]]]:
    """For each ID, the other members of its group as (ID, Hamming distance to it), nearest first.

    One round trip for all IDs, so a GraphQL page of images costs one call, not one per image.
    Until the cleanup issue fills the groups, no image has related images.
    """
    return {image_id: [] for image_id in ids}
