"""The full scan: every indexed image's ID, pHash and file, read once per run from the search index."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from paktum_cleanup.progress import Progress
from paktum_common.banned import banned_in
from paktum_common.search import SearchBackend

EXPORT_BATCH = 2000


@dataclass
class Catalogue:
    """Columns, not documents: a million images cost tens of megabytes, not gigabytes."""

    ids: list[str] = field(default_factory=list)
    phashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    filenames: list[str] = field(default_factory=list)
    added: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # UNIX seconds
    banned: list[int] = field(default_factory=list)  # positions of images carrying a banned tag
    # Every image's alternate pHashes, one after the other: image i's are alt_values[alt_starts[i]:alt_starts[i+1]].
    alt_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    alt_values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.ids)

    def alternates_of(self, index: int) -> tuple[int, ...]:
        if self.alt_starts.size <= index + 1:
            return ()
        return tuple(int(h) for h in self.alt_values[self.alt_starts[index] : self.alt_starts[index + 1]])

    def alternate_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(owner index, alternate pHash) for every alternate: what the grouping matches against the plain hashes."""
        counts = np.diff(self.alt_starts) if self.alt_starts.size == len(self) + 1 else np.zeros(len(self), np.int64)
        return np.repeat(np.arange(len(self), dtype=np.int64), counts), self.alt_values

    def without(self, drop: Iterable[str]) -> Catalogue:
        gone = set(drop)
        keep = [i for i, image_id in enumerate(self.ids) if image_id not in gone]
        position = np.array(keep, dtype=np.int64)
        remaining = set(keep)
        renumber = {old: new for new, old in enumerate(keep)}
        return Catalogue(
            ids=[self.ids[i] for i in keep],
            phashes=self.phashes[position] if keep else np.empty(0, dtype=np.uint64),
            filenames=[self.filenames[i] for i in keep],
            added=self.added[position] if keep else np.empty(0, dtype=np.int64),
            banned=[renumber[i] for i in self.banned if i in remaining],
            **self._alternates_at(keep),
        )

    def _alternates_at(self, keep: list[int]) -> dict[str, np.ndarray]:
        if self.alt_starts.size != len(self) + 1:
            return {}
        counts = np.diff(self.alt_starts)[keep] if keep else np.empty(0, dtype=np.int64)
        kept = [self.alt_values[self.alt_starts[i] : self.alt_starts[i + 1]] for i in keep]
        return {
            "alt_starts": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "alt_values": np.concatenate(kept).astype(np.uint64) if kept else np.empty(0, dtype=np.uint64),
        }


async def load_catalogue(
    search: SearchBackend, banned: frozenset[str], progress: Progress, alternates: bool = True
) -> Catalogue:
    """Read every document (oldest first, so a group's anchor is its oldest image); with `alternates`
    (PAKTUM_VARIANT_TRANSFORMS) their alternate pHashes too."""
    ids: list[str] = []
    phashes: list[int] = []
    filenames: list[str] = []
    added: list[int] = []
    flagged: list[int] = []
    alt_counts: list[int] = []
    alt_values: list[int] = []
    progress.start("scan index", await search.count())
    async for batch in search.export(EXPORT_BATCH):
        for doc in batch:
            if banned and banned_in(doc.Tags, banned):
                flagged.append(len(ids))
            ids.append(doc.ID)
            phashes.append(doc.PHash)
            filenames.append(doc.Filename)
            added.append(doc.added_seconds)
            if alternates:
                alt_counts.append(len(doc.PHashAlternates))
                alt_values.extend(doc.PHashAlternates)
        progress.advance(len(batch))
    progress.finish()
    starts = np.concatenate([[0], np.cumsum(np.array(alt_counts if alternates else [0] * len(ids), dtype=np.int64))])
    return Catalogue(
        ids, np.array(phashes, dtype=np.uint64), filenames, np.array(added, dtype=np.int64), flagged,
        starts.astype(np.int64), np.array(alt_values, dtype=np.uint64),
    )  # fmt: skip
