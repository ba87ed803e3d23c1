"""The full scan: every indexed image's ID, pHash and file, read once per run from the search index."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from paktum_cleanup.progress import Progress
from paktum_cleanup.variants import Signatures, SymmetryRows
from paktum_common.banned import banned_in
from paktum_common.hues import HUES_LENGTH, kept_mark
from paktum_common.phash import SIGNATURE_LENGTH, Symmetry, coefficients_of, hues_of
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
    # Every image's Symmetry (paktum_common.phash): image i's symmetric hashes are sym_values[sym_starts[i]:
    # sym_starts[i+1]], none for an image hashed before they were computed; `symmetric` says which are symmetric.
    sym_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    sym_values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    symmetric: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    # Every image's signature (paktum_common.dct_hash.signature), a row of zeros and `signed` False for an image
    # hashed before they were computed.
    signatures: np.ndarray = field(default_factory=lambda: np.empty((0, SIGNATURE_LENGTH), dtype=np.int8))
    signed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    # Every image's hue mark (the signature's end, paktum_common.hues), a row of zeros for one without.
    hues: np.ndarray = field(default_factory=lambda: np.empty((0, HUES_LENGTH), dtype=np.uint8))

    def __len__(self) -> int:
        return len(self.ids)

    def alternates_of(self, index: int) -> tuple[int, ...]:
        if self.alt_starts.size <= index + 1:
            return ()
        return tuple(int(h) for h in self.alt_values[self.alt_starts[index] : self.alt_starts[index + 1]])

    def symmetry_of(self, index: int) -> Symmetry | None:
        if self.sym_starts.size <= index + 1 or self.sym_starts[index] == self.sym_starts[index + 1]:
            return None
        values = self.sym_values[self.sym_starts[index] : self.sym_starts[index + 1]]
        return Symmetry(bool(self.symmetric[index]), tuple(int(h) for h in values))

    def hues_of(self, index: int) -> bytes:
        """Its hue mark as a group record keeps it (paktum_common.hues.kept_mark)."""
        return kept_mark(self.hues[index].tobytes()) if self.hues.shape[0] > index else b""

    def alternate_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(owner index, alternate pHash) for every alternate: what the grouping matches against the plain hashes."""
        return _rows(self.alt_starts, self.alt_values, len(self))

    def symmetry_rows(self) -> SymmetryRows:
        """What the grouping matches symmetric pictures by: Catalogue.symmetric, and (owner, symmetric hash)."""
        symmetric = self.symmetric if self.symmetric.size == len(self) else np.zeros(len(self), dtype=bool)
        return (symmetric, *_rows(self.sym_starts, self.sym_values, len(self)))

    def signature_rows(self) -> Signatures | None:
        """What the grouping tells chance pairs from copies by (none when no image has a signature)."""
        if self.signed.size != len(self) or not self.signed.any():
            return None
        return self.signatures, self.signed

    def hue_rows(self) -> np.ndarray | None:
        """What the grouping tells pictures of other colours by (none when no image has a hue mark)."""
        if self.hues.shape[0] != len(self) or not self.hues.any():
            return None
        return self.hues

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
            **_ragged_at("alt", self.alt_starts, self.alt_values, keep, len(self)),
            **_ragged_at("sym", self.sym_starts, self.sym_values, keep, len(self)),
            **({"symmetric": self.symmetric[position] if keep else self.symmetric[:0]} if self.symmetric.size else {}),
            **(
                {
                    "signatures": self.signatures[position if keep else []],
                    "signed": self.signed[position if keep else []],
                }
                if self.signed.size
                else {}
            ),
            **({"hues": self.hues[position if keep else []]} if self.hues.shape[0] else {}),
        )


def _rows(starts: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, value) for every value of a ragged column."""
    counts = np.diff(starts) if starts.size == n + 1 else np.zeros(n, np.int64)
    return np.repeat(np.arange(n, dtype=np.int64), counts), values


def _ragged_at(name: str, starts: np.ndarray, values: np.ndarray, keep: list[int], n: int) -> dict[str, np.ndarray]:
    """A ragged column (`name`_starts, `name`_values) for the kept rows only."""
    if starts.size != n + 1:
        return {}
    counts = np.diff(starts)[keep] if keep else np.empty(0, dtype=np.int64)
    kept = [values[starts[i] : starts[i + 1]] for i in keep]
    return {
        f"{name}_starts": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        f"{name}_values": np.concatenate(kept).astype(np.uint64) if kept else np.empty(0, dtype=np.uint64),
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
    sym_counts: list[int] = []
    sym_values: list[int] = []
    symmetric: list[bool] = []
    marks = bytearray()
    signed: list[bool] = []
    hues = bytearray()
    blank, no_hues = bytes(SIGNATURE_LENGTH), bytes(HUES_LENGTH)
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
            sym_counts.append(len(doc.PHashSymmetric))
            sym_values.extend(doc.PHashSymmetric)
            symmetric.append(doc.Symmetric)
            mark = doc.signature
            coefficients, hue = coefficients_of(mark), hues_of(mark)
            signed.append(bool(coefficients))
            marks += coefficients or blank
            hues += hue or no_hues
        progress.advance(len(batch))
    progress.finish()
    starts = np.concatenate([[0], np.cumsum(np.array(alt_counts if alternates else [0] * len(ids), dtype=np.int64))])
    return Catalogue(
        ids, np.array(phashes, dtype=np.uint64), filenames, np.array(added, dtype=np.int64), flagged,
        starts.astype(np.int64), np.array(alt_values, dtype=np.uint64),
        np.concatenate([[0], np.cumsum(np.array(sym_counts, dtype=np.int64))]).astype(np.int64),
        np.array(sym_values, dtype=np.uint64), np.array(symmetric, dtype=bool),
        np.frombuffer(bytes(marks), dtype=np.int8).reshape(-1, SIGNATURE_LENGTH), np.array(signed, dtype=bool),
        np.frombuffer(bytes(hues), dtype=np.uint8).reshape(-1, HUES_LENGTH),
    )  # fmt: skip
