"""Parsed documents of the embedded index kept in memory, current with its change feed (the `changes` table).

A GraphQL page with `Related` reads a few dozen documents by ID after its search, and reading them cost more
than the rest of `Related` together: a hop to a thread, a query, and a parse of each (paktum_common.search.sqlite).
The same images come back again and again (the web clients send the same few queries), so each process keeps
the documents it has read, parsed, and answers from memory whenever nothing changed since:

- an entry is taken out as soon as the change feed names its image (an edit, a delete, a re-index), by
  whichever thread next reads documents; when the feed was trimmed past this process, everything goes;
- an entry counts only while the feed's head is the change the memory has followed up to (`seq`): a reader
  checks the head first (one indexed lookup), so a change committed by any process is seen by the next read,
  as the search sees it;
- a document read in a snapshot older than what the memory has followed is not kept (it may be the version an
  applied change replaced).

Lookups take no lock (the event loop must never wait for a thread); following the feed and storing take one,
so they apply in order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence

from paktum_common.contracts import ImageDocument

FOLLOW_MAX = 10_000  # changes to read one by one; further behind, dropping everything is cheaper


class DocumentMemory:
    """Documents by ID with their rowids, valid as of change `seq` of the feed."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seq = -1  # the change the memory is current with; -1: not yet started (nothing held)
        self._by_id: dict[str, tuple[int, ImageDocument]] = {}
        self._id_of: dict[int, str] = {}  # rowid -> ID, to take out what a change names
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def lookup(self, ids: Sequence[str]) -> tuple[dict[str, ImageDocument], list[str]]:
        """The held documents of `ids` and the IDs not held. Current only if the feed's head is `seq`."""
        found: dict[str, ImageDocument] = {}
        missing: list[str] = []
        by_id = self._by_id
        for doc_id in ids:
            held = by_id.get(doc_id)
            if held is None:
                missing.append(doc_id)
            else:
                found[doc_id] = held[1]
        return found, missing

    def follow(self, conn: sqlite3.Connection, head: int) -> None:
        """Take out what the changes after `seq` up to `head` name, inside the caller's read transaction."""
        with self._lock:
            if head == self.seq:
                return
            if not self._by_id or self.seq < 0 or head < self.seq or head - self.seq > FOLLOW_MAX:
                self._forget(head)  # nothing to take out, or cheaper to start over (a rebuilt index: start over)
                return
            rows = conn.execute("SELECT seq, image FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq",
                                (self.seq, head)).fetchall()  # fmt: skip
            if not rows or rows[0][0] != self.seq + 1 or rows[-1][0] != head:
                self._forget(head)  # the feed was trimmed past what this process followed
                return
            for _, rowid in rows:
                doc_id = self._id_of.pop(int(rowid), None)
                if doc_id is not None:
                    self._by_id.pop(doc_id, None)
            self.seq = head

    def store(self, read: Iterable[tuple[int, ImageDocument]], snapshot: int) -> None:
        """Keep documents (with their rowids) read in the snapshot whose newest change is `snapshot`."""
        if self.capacity <= 0:
            return
        with self._lock:
            if snapshot < self.seq:
                return  # a change already applied may have replaced what was read
            for rowid, doc in read:
                if len(self._by_id) >= self.capacity:
                    # The oldest kept goes first: cheap, and what a page shows again is read (and kept) again.
                    oldest = next(iter(self._by_id))
                    self._id_of.pop(self._by_id.pop(oldest)[0], None)
                known = self._by_id.get(doc.ID)
                if known is not None and known[0] != rowid:
                    self._id_of.pop(known[0], None)
                self._by_id[doc.ID] = (rowid, doc)
                self._id_of[rowid] = doc.ID

    def _forget(self, head: int) -> None:
        self._by_id.clear()
        self._id_of.clear()
        self.seq = head
