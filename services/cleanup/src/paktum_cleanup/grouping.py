"""The grouping step: every variant group recomputed from the full scan, then swapped into Redis at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import numpy as np

from paktum_cleanup.catalogue import Catalogue
from paktum_cleanup.progress import Progress
from paktum_cleanup.variants import Method, available_method, group_variants
from paktum_common.catalog import Catalog
from paktum_common.groups import GroupsBuild, VariantGroup, mark_not_variants, not_variant_pairs
from paktum_common.registry import IMAGES

WRITE_BATCH = 1000


@dataclass(frozen=True)
class GroupReport:
    groups: int
    largest: int
    grouped_images: int
    pairs: int
    seconds: float  # the pair search and components alone
    method: str
    late_linked: int  # images indexed during the run, linked after the swap


def _excluded(catalogue: Catalogue, decisions: list[tuple[str, str]]) -> np.ndarray:
    position = {image_id: i for i, image_id in enumerate(catalogue.ids)}
    rows = [(position[a], position[b]) for a, b in decisions if a in position and b in position]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


async def regroup_all(
    catalog: Catalog, catalogue: Catalogue, progress: Progress, method: Method = "auto"
) -> GroupReport:
    redis, distance = catalog.redis, catalog.distance
    decisions = await not_variant_pairs(redis)
    progress.start("group", 1)
    started = time.perf_counter()
    # CPU-bound for seconds: off the event loop (the kernels release the GIL) so the lock keeps being renewed.
    grouping = await asyncio.to_thread(
        group_variants,
        catalogue.phashes,
        distance,
        method,
        _excluded(catalogue, decisions),
        catalogue.alternate_rows(),
        catalogue.symmetry_rows(),
        catalogue.signature_rows(),
        catalogue.hue_rows(),
    )
    seconds = time.perf_counter() - started
    progress.finish()
    groups = grouping.groups()
    build = GroupsBuild(redis, uuid.uuid4().hex)
    try:
        progress.start("write groups", len(groups))
        for start in range(0, len(groups), WRITE_BATCH):
            batch = groups[start : start + WRITE_BATCH]
            await build.add([_variant_group(catalogue, members) for members in batch])
            progress.advance(len(batch))
        progress.finish()
        largest = max((len(g) for g in groups), default=0)
        grouped = sum(len(g) for g in groups)
        used = method if method != "auto" else available_method()
        await build.publish(
            {"groups": len(groups), "largest": largest, "grouped_images": grouped, "pairs": len(grouping.pairs),
             "seconds": round(seconds, 3), "distance": distance}
        )  # fmt: skip
    except BaseException:
        await asyncio.shield(build.discard())
        raise
    late = await _link_late_images(catalog, catalogue)
    # Decisions taken while this run computed are not in its groups: apply them now.
    for a, b in set(await not_variant_pairs(redis)) - set(decisions):
        await mark_not_variants(redis, a, b, distance)
    return GroupReport(len(groups), largest, grouped, len(grouping.pairs), seconds, used, late)


def _variant_group(catalogue: Catalogue, members: np.ndarray) -> VariantGroup:
    anchor = catalogue.ids[int(members[0])]
    phashes = {catalogue.ids[int(i)]: int(catalogue.phashes[int(i)]) for i in members}
    alternates = {catalogue.ids[int(i)]: catalogue.alternates_of(int(i)) for i in members}
    symmetry = {catalogue.ids[int(i)]: catalogue.symmetry_of(int(i)) for i in members}
    hues = {catalogue.ids[int(i)]: catalogue.hues_of(int(i)) for i in members}
    return VariantGroup.around(anchor, phashes, alternates, symmetry, hues)


async def _link_late_images(catalog: Catalog, catalogue: Catalogue) -> int:
    """Images the hasher linked while this run computed were dropped by the swap: link them again."""
    scanned = set(catalogue.ids)
    registry = await IMAGES.scan(catalog.redis)
    late = [md5 for md5 in registry if md5 not in scanned]
    present = await catalog.search.get_documents(late)
    alternates = {md5: doc.PHashAlternates for md5, doc in present.items() if doc.PHashAlternates}
    symmetry = {md5: doc.symmetry for md5, doc in present.items()}
    signatures = {md5: doc.signature for md5, doc in present.items() if doc.signature}
    return await catalog.register({md5: doc.PHash for md5, doc in present.items()}, alternates, symmetry, signatures)
