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

    def __len__(self) -> int:
        return len(self.ids)

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
        )


async def load_catalogue(search: SearchBackend, banned: frozenset[str], progress: Progress) -> Catalogue:
    """Read every document (oldest first, so a group's anchor is its oldest image)."""
    ids: list[str] = []
    phashes: list[int] = []
    filenames: list[str] = []
    added: list[int] = []
    flagged: list[int] = []
    progress.start("scan index", await search.count())
    async for batch in search.export(EXPORT_BATCH):
        for doc in batch:
            if banned and banned_in(doc.Tags, banned):
                flagged.append(len(ids))
            ids.append(doc.ID)
            phashes.append(doc.PHash)
            filenames.append(doc.Filename)
            added.append(doc.added_seconds)
        progress.advance(len(batch))
    progress.finish()
    return Catalogue(ids, np.array(phashes, dtype=np.uint64), filenames, np.array(added, dtype=np.int64), flagged)
