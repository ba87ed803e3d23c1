"""The embedded search's in-memory index: one compressed bitmap of image ordinals per tag.

SQLite holds the documents and the order in which they changed (`search.sqlite`); each process that
serves search keeps this index of them and brings it up to date from that change order before it
answers. A query is then set algebra on bitmaps (intersection for `a b`, difference for `-a`, union for
`~a ~b` and `a*`), which gives exact totals for free (a bitmap's cardinality) and a uniform random page
by rank (`hits[i]` for random positions i). Numeric filters and the order by `added` read numpy columns
indexed by the same ordinals (SQLite's rowids).

Full-text words are derived from tags (the words of `blue_sky` are `blue` and `sky`), so a word is the
union of the bitmaps of the tags that contain it; no separate full-text index is stored.

Not thread-safe: the owner (SqliteSearch) calls it from one thread.
"""

from __future__ import annotations

import array
import bisect
import collections
import functools
import itertools
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pyroaring import BitMap

from paktum_common.contracts import Rating
from paktum_common.search.query import NumericFilter, Order, SearchQuery

MAX_ORDINAL = 2**32 - 1  # a roaring bitmap holds 32-bit values; SQLite rowids of an index reach that never
_RATINGS = tuple(Rating)
_RATING_CODE = {rating.value: code for code, rating in enumerate(_RATINGS)}
_LOW = np.uint64(0xFFFFFFFF)
PREFIX_CACHE = 64  # prefix unions kept current in memory
WORD_CACHE = 256  # word unions kept current in memory
BUCKETS = 64  # value ranges per numeric field
WALK_WINDOW = 4096  # the least of the global order read at a time when most images are hits


def words_of(text: str) -> list[str]:
    """The full-text words of a tag or of a quoted query word, as SQLite's unicode61 tokenizer makes them.

    Letters, digits and private-use characters make words; everything else (`_`, `-`, punctuation,
    symbols) separates them. Words are case-folded with their diacritics removed (`Café` is `cafe`).
    """
    words: list[str] = []
    current: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        category = unicodedata.category(char)
        if category[0] in "LN" or category == "Co":
            current.append(char)
        elif category[0] == "M":
            continue  # a combining mark (a diacritic once decomposed) belongs to no word
        elif current:
            words.append("".join(current).casefold())
            current = []
    if current:
        words.append("".join(current).casefold())
    return words


@functools.lru_cache(maxsize=65_536)
def _words_of_tag(tag: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words_of(tag)))


@dataclass(frozen=True)
class Columns:
    """Every image at once, for `load`: parallel arrays, the tags of all images end to end in `tag_ids`."""

    ordinals: np.ndarray  # int64
    ratings: np.ndarray  # rating codes (the order of contracts.Rating), int64
    added: np.ndarray
    width: np.ndarray
    height: np.ndarray
    size: np.ndarray
    tag_ids: np.ndarray  # uint32, the tags of the first image, then of the second, ...
    tag_counts: np.ndarray  # int64, how many of tag_ids each image has
    names: dict[int, str]  # tag id -> tag


def rating_code(rating: str) -> int:
    return _RATING_CODE[rating]


def rating_value(code: int) -> str:
    return _RATINGS[code].value


def _ordinals(bitmap: BitMap) -> np.ndarray:
    """The bitmap's members as a uint32 array (a view of pyroaring's copy, no Python ints)."""
    return np.frombuffer(bitmap.to_array(), dtype=np.uint32)


def _union(bitmaps: Iterable[BitMap]) -> BitMap:
    """The union of any number of bitmaps (empty for none), in one call."""
    return BitMap.union(BitMap(), *bitmaps)


def _bitmap(values: np.ndarray) -> BitMap:
    return BitMap(array.array("I", values.astype(np.uint32).tobytes()))


@dataclass(frozen=True)
class Row:
    """What the index keeps of one image: its ordinal (rowid), tags, rating and numeric fields."""

    ordinal: int
    tags: tuple[str, ...]
    rating: str
    added: int
    width: int
    height: int
    size: int


class _Column:
    """A growable int64 array indexed by ordinal."""

    def __init__(self) -> None:
        self.values = np.zeros(1024, dtype=np.int64)

    def reserve(self, ordinal: int) -> None:
        if ordinal >= len(self.values):
            grown = np.zeros(max(ordinal + 1, len(self.values) * 2), dtype=np.int64)
            grown[: len(self.values)] = self.values
            self.values = grown


class _Buckets:
    """The images by ranges of one numeric field: a bitmap per range, about BUCKETS of them, of equal size
    when made. `width:>1000` is then the union of the ranges above 1000 and the exact test of one range."""

    def __init__(self, values: np.ndarray, ordinals: np.ndarray) -> None:
        mine = values[ordinals]
        if len(mine):
            quantiles = np.quantile(mine, np.linspace(0, 1, BUCKETS + 1)[1:-1], method="lower")
            self.edges: list[int] = [int(edge) for edge in np.unique(quantiles)]
        else:
            self.edges = []
        # Bucket i holds the values v with edges[i-1] <= v < edges[i].
        where = np.searchsorted(np.asarray(self.edges, dtype=np.int64), mine, side="right").astype(np.uint64)
        keys = (where << np.uint64(32)) | ordinals.astype(np.uint64)
        keys.sort()
        buckets = keys >> np.uint64(32)
        bounds = np.searchsorted(buckets, np.arange(len(self.edges) + 2, dtype=np.uint64))
        self.bitmaps = [_bitmap(keys[start:end] & _LOW) for start, end in itertools.pairwise(bounds)]
        self.made_for = len(ordinals)

    def bucket(self, value: int) -> int:
        return bisect.bisect_right(self.edges, value)

    def lopsided(self, alive: int) -> bool:
        """Grown unevenly since made (an index filled from empty, say): make it again."""
        return alive > 2 * self.made_for + 4096 or max(map(len, self.bitmaps)) > 4 * alive // BUCKETS + 4096

    def select(self, hits: BitMap, numeric: NumericFilter, values: np.ndarray) -> BitMap:
        at = self.bucket(numeric.value)
        if numeric.op in (">", ">="):
            whole = self.bitmaps[at + 1 :]
        elif numeric.op in ("<", "<="):
            whole = self.bitmaps[:at]
        else:
            whole = []
        edge = self.bitmaps[at] & hits
        ordinals = _ordinals(edge)
        exact = _bitmap(ordinals[_compare(values[ordinals], numeric)])
        return (_union(whole) & hits) | exact


def _order_key(added: np.ndarray, ordinals: np.ndarray) -> np.ndarray:
    """The sort key of (added, ordinal) as one unsigned 64-bit number: seconds in the high half.

    Seconds outside 0..2^32-1 (before 1970 or after 2106) sort as the nearest end of that range.
    """
    seconds = np.clip(added, 0, int(_LOW)).astype(np.uint64)
    return (seconds << np.uint64(32)) | ordinals.astype(np.uint64)


class TagBitmaps:
    """The index. `load` or `apply` bring images in or out; `hits`, `page` and `tags` answer queries."""

    def __init__(self) -> None:
        self.alive = BitMap()
        self.by_tag: dict[str, BitMap] = {}
        self.by_rating = [BitMap() for _ in _RATINGS]
        self.columns = {name: _Column() for name in ("added", "width", "height", "size")}
        self._sorted_tags: list[str] = []  # every tag with a bitmap, sorted, for prefixes
        self._new_tags: set[str] = set()  # tags not yet in _sorted_tags
        # Full-text words: which tags hold each word (built at the first word query), and the bitmap of
        # each word asked for (the union of its tags' bitmaps), kept current by `apply` from then on.
        self._tags_of_word: dict[str, set[str]] | None = None
        self._words: dict[str, BitMap] = {}
        # The union for each recently asked prefix (`tag_1*` can be thousands of tags), kept current too.
        self._prefixes: collections.OrderedDict[str, BitMap] = collections.OrderedDict()
        # Every alive image's (added, ordinal) key, sorted: the order by added without sorting per query.
        self._order = np.zeros(0, dtype=np.uint64)
        self._buckets: dict[str, _Buckets] = {}  # per numeric field, made at its first filter
        self._counts: np.ndarray | None = None  # the count of each of _sorted_tags, for `tags`

    def __len__(self) -> int:
        return len(self.alive)

    def prepare(self) -> None:
        """Make now what the first numeric filter and the first full-text word would (a fraction of a
        second at a million images each), so that no search pays for it."""
        for name in self.columns:
            if name not in self._buckets:
                self._make_buckets(name)
        self._word_map()

    def _make_buckets(self, name: str) -> _Buckets:
        ordinals = _ordinals(self.alive).astype(np.int64)
        buckets = self._buckets[name] = _Buckets(self.columns[name].values, ordinals)
        return buckets

    def _word_map(self) -> dict[str, set[str]]:
        """Which tags hold each word: made at the first word query (or `prepare`), kept current after."""
        if self._tags_of_word is None:
            self._tags_of_word = {}
            for tag in self.by_tag:
                self._index_words(self._tags_of_word, tag)
        return self._tags_of_word

    def load(self, columns: Columns) -> None:
        """Fill an empty index at once from whole columns (no Python work per tag of each image)."""
        ordinals = columns.ordinals.astype(np.int64)
        if len(ordinals):
            _check_ordinal(int(ordinals.max()))
            _check_ordinal(int(ordinals.min()))
        self.alive = _bitmap(ordinals)
        self.by_rating = [_bitmap(ordinals[columns.ratings == code]) for code in range(len(_RATINGS))]
        # Every (tag, image) pair, grouped by tag with one stable sort: each group becomes a bitmap.
        # One sort of (tag id, ordinal) keys: three times faster than a stable argsort of the tag ids.
        keys = (columns.tag_ids.astype(np.uint64) << np.uint64(32)) | np.repeat(ordinals, columns.tag_counts).astype(
            np.uint64
        )
        keys.sort()
        tag_ids = keys >> np.uint64(32)
        owners = keys & _LOW
        del keys
        bounds = np.flatnonzero(np.diff(tag_ids)) + 1
        starts = np.concatenate(([0], bounds)) if len(tag_ids) else np.zeros(0, dtype=np.int64)
        ends = np.concatenate((bounds, [len(tag_ids)])) if len(tag_ids) else np.zeros(0, dtype=np.int64)
        names = columns.names
        self.by_tag = {
            names[int(tag_ids[start])]: _bitmap(owners[start:end]) for start, end in zip(starts, ends, strict=True)
        }
        top = int(ordinals.max()) if len(ordinals) else 0
        for name, column in self.columns.items():
            column.reserve(top)
            column.values[ordinals] = getattr(columns, name)
        self._sorted_tags = sorted(self.by_tag)
        self._new_tags = set()
        self._tags_of_word = None
        self._words.clear()
        self._prefixes.clear()
        self._buckets.clear()
        self._counts = None
        self._order = np.sort(_order_key(self.columns["added"].values[ordinals], ordinals))

    def apply(self, removed: Mapping[int, Iterable[str]], current: Sequence[Row]) -> None:
        """Take ordinals out (each with the tags the index has for it), then put `current` rows in.

        A change batch removes every changed ordinal with its old tags first, then adds what the
        ordinals hold now, so several changes of one image in one batch end in its latest state.
        """
        self._counts = None
        dropped = [ordinal for ordinal in removed if ordinal in self.alive]
        gone = _bitmap(np.asarray(list(removed), dtype=np.int64))
        for ordinal, tags in removed.items():
            for tag in tags:
                bitmap = self.by_tag.get(tag)
                if bitmap is not None:
                    bitmap.discard(ordinal)
                    if not bitmap:
                        self._forget_tag(tag)
        self.alive -= gone
        ranges = [bitmap for buckets in self._buckets.values() for bitmap in buckets.bitmaps]
        for bitmap in (*self.by_rating, *self._words.values(), *self._prefixes.values(), *ranges):
            bitmap.difference_update(gone)
        if dropped:
            index = np.asarray(dropped, dtype=np.int64)
            keys = _order_key(self.columns["added"].values[index], index)
            self._order = np.delete(self._order, np.searchsorted(self._order, np.sort(keys)))
        if not current:
            return
        touched: set[str] = set()
        for row in current:
            _check_ordinal(row.ordinal)
            self.alive.add(row.ordinal)
            self.by_rating[_RATING_CODE[row.rating]].add(row.ordinal)
            for tag in row.tags:
                bitmap = self.by_tag.get(tag)
                if bitmap is None:
                    bitmap = self.by_tag[tag] = BitMap()
                    self._new_tags.add(tag)
                    if self._tags_of_word is not None:
                        self._index_words(self._tags_of_word, tag)
                bitmap.add(row.ordinal)
            touched.update(row.tags)
            for name, column in self.columns.items():
                value = getattr(row, name)
                column.reserve(row.ordinal)
                column.values[row.ordinal] = value
                buckets = self._buckets.get(name)
                if buckets is not None:
                    buckets.bitmaps[buckets.bucket(value)].add(row.ordinal)
        self._add_to_unions(touched, BitMap(row.ordinal for row in current))
        index = np.asarray([row.ordinal for row in current], dtype=np.int64)
        keys = np.sort(_order_key(self.columns["added"].values[index], index))
        self._order = np.insert(self._order, np.searchsorted(self._order, keys), keys)

    def _add_to_unions(self, touched: set[str], ordinals: BitMap) -> None:
        """Put the new `ordinals` into the cached prefix and word unions their tags (`touched`) belong to."""
        if self._prefixes:
            ordered = sorted(touched)
            for prefix, union in self._prefixes.items():
                at = bisect.bisect_left(ordered, prefix)
                while at < len(ordered) and ordered[at].startswith(prefix):
                    union |= self.by_tag[ordered[at]] & ordinals
                    at += 1
        if self._words:
            for tag in touched:
                for word in _words_of_tag(tag):
                    cached = self._words.get(word)
                    if cached is not None:
                        cached |= self.by_tag[tag] & ordinals

    def _forget_tag(self, tag: str) -> None:
        del self.by_tag[tag]
        if tag in self._new_tags:
            self._new_tags.discard(tag)
        else:
            at = bisect.bisect_left(self._sorted_tags, tag)
            if at < len(self._sorted_tags) and self._sorted_tags[at] == tag:
                del self._sorted_tags[at]
        if self._tags_of_word is not None:
            for word in _words_of_tag(tag):
                tags = self._tags_of_word.get(word)
                if tags is not None:
                    tags.discard(tag)
                    if not tags:
                        del self._tags_of_word[word]

    @staticmethod
    def _index_words(tags_of_word: dict[str, set[str]], tag: str) -> None:
        for word in _words_of_tag(tag):
            tags_of_word.setdefault(word, set()).add(tag)

    def _tags_sorted(self) -> list[str]:
        if self._new_tags:
            self._sorted_tags = sorted({*self._sorted_tags, *self._new_tags})
            self._new_tags = set()
        return self._sorted_tags

    # --- answering ------------------------------------------------------------------------------------

    def _with_prefix(self, prefix: str) -> list[str]:
        tags = self._tags_sorted()
        start = bisect.bisect_left(tags, prefix)
        end = bisect.bisect_left(tags, prefix + "\U0010ffff", lo=start)
        return tags[start:end]

    def _union_of_prefix(self, prefix: str) -> BitMap:
        union = self._prefixes.get(prefix)
        if union is not None:
            self._prefixes.move_to_end(prefix)
            return union
        tags = self._with_prefix(prefix)
        union = _union(self.by_tag[tag] for tag in tags)
        if len(tags) > 1:  # one tag is its own bitmap already
            self._prefixes[prefix] = union
            if len(self._prefixes) > PREFIX_CACHE:
                self._prefixes.popitem(last=False)
        return union

    def _word(self, word: str) -> BitMap:
        tokens = words_of(word)
        if not tokens:
            return BitMap()
        # A quoted word that the tokenizer splits (`"blue-sky"`) needs every one of its words.
        if len(tokens) == 1:
            return self._token(tokens[0])
        return BitMap.intersection(*(self._token(token) for token in tokens))

    def _token(self, token: str) -> BitMap:
        bitmap = self._words.get(token)
        if bitmap is None:
            tags = self._word_map().get(token, ())
            bitmap = _union(self.by_tag[tag] for tag in tags)
            if len(self._words) >= WORD_CACHE:
                self._words.pop(next(iter(self._words)))
            self._words[token] = bitmap
        return bitmap

    def hits(self, query: SearchQuery) -> BitMap:
        """The ordinals of every image that matches `query` (a new bitmap the caller may keep)."""
        required: list[BitMap] = []
        for tag in query.all_tags:
            bitmap = self.by_tag.get(tag)
            if bitmap is None:
                return BitMap()
            required.append(bitmap)
        if query.any_tags:
            required.append(_union(self.by_tag.get(t, BitMap()) for t in query.any_tags))
        required.extend(self._union_of_prefix(prefix) for prefix in query.prefixes)
        required.extend(self._word(word) for word in query.words)
        if query.ratings:
            required.append(_union(self.by_rating[_RATING_CODE[r.value]] for r in query.ratings))
        if required:
            required.sort(key=len)  # the smallest first: every intersection after it is at most its size
            result = BitMap.intersection(*required) if len(required) > 1 else required[0].copy()
        else:
            result = self.alive.copy()
        for tag in query.none_tags:
            if result and tag in self.by_tag:
                result -= self.by_tag[tag]
        for prefix in query.none_prefixes:
            if result:
                result -= self._union_of_prefix(prefix)
        for numeric in query.numeric:
            if result:
                result = self._numeric(result, numeric)
        return result

    def _numeric(self, hits: BitMap, numeric: NumericFilter) -> BitMap:
        values = self.columns[numeric.field].values
        if len(hits) * 16 < len(self.alive):
            # Few hits: test only them.
            ordinals = _ordinals(hits)
            return _bitmap(ordinals[_compare(values[ordinals], numeric)])
        buckets = self._buckets.get(numeric.field)
        if buckets is None or buckets.lopsided(len(self.alive)):
            buckets = self._make_buckets(numeric.field)
        return buckets.select(hits, numeric, values)

    def page(self, hits: BitMap, order: Order, limit: int, offset: int, rng_sample: Sequence[int] = ()) -> list[int]:
        """The ordinals of one page of `hits`: by added (ties by ordinal) or at the given random positions."""
        if order is Order.random:
            return [hits[position] for position in rng_sample]
        want = offset + limit
        if want <= 0 or offset >= len(hits):
            return []
        descending = order is Order.added_desc
        if len(hits) == len(self.alive):
            window = self._order[-want:][::-1] if descending else self._order[:want]
            return [int(key & _LOW) for key in window[offset:]]
        if len(hits) * 4 >= len(self.alive):
            found = self._walk(hits, want, descending)
        else:
            ordinals = _ordinals(hits).astype(np.int64)
            keys = _order_key(self.columns["added"].values[ordinals], ordinals)
            if descending:
                keys = ~keys  # the largest first
            if want < len(keys):
                keys = np.partition(keys, want - 1)[:want]
            found = np.sort(keys)
            if descending:
                found = ~found
        return [int(key & _LOW) for key in found[offset:want]]

    def _walk(self, hits: BitMap, want: int, descending: bool) -> np.ndarray:
        """Many hits: read the global order from the right end, a window at a time, keeping the hits."""
        total = len(self._order)
        window = max(WALK_WINDOW, want * 2 * total // max(1, len(hits)))
        found: list[np.ndarray] = []
        have = 0
        start = 0
        while have < want and start < total:
            chunk = (
                self._order[max(0, total - start - window) : total - start][::-1]
                if descending
                else self._order[start : start + window]
            )
            start += window
            ordinals = (chunk & _LOW).astype(np.uint32)
            member = BitMap(array.array("I", ordinals.tobytes())) & hits
            if member:
                keep = np.isin(ordinals, _ordinals(member), assume_unique=True)
                found.append(chunk[keep])
                have += int(keep.sum())
            window *= 2
        return np.concatenate(found) if found else np.zeros(0, dtype=np.uint64)

    def tags(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """The `limit` most used tags starting with `prefix`, most used first, ties by name."""
        names = self._tags_sorted()
        if self._counts is None:  # every tag's count, in name order, until the next change
            self._counts = np.fromiter((len(self.by_tag[tag]) for tag in names), dtype=np.int64, count=len(names))
        start = bisect.bisect_left(names, prefix)
        end = bisect.bisect_left(names, prefix + "\U0010ffff", lo=start)
        counts = self._counts[start:end]
        if len(counts) > limit:
            # Every tag at least as used as the limit-th: ranked by count, then by position (name).
            least = np.partition(counts, len(counts) - limit)[len(counts) - limit]
            candidates = np.flatnonzero(counts >= least)
        else:
            candidates = np.arange(len(counts))
        ranked = candidates[np.lexsort((candidates, -counts[candidates]))][:limit]
        return [(names[start + int(at)], int(counts[at])) for at in ranked]


def _compare(values: np.ndarray, numeric: NumericFilter) -> np.ndarray:
    value = numeric.value
    if numeric.op == "<":
        return values < value
    if numeric.op == "<=":
        return values <= value
    if numeric.op == ">":
        return values > value
    if numeric.op == ">=":
        return values >= value
    return values == value


def _check_ordinal(ordinal: int) -> None:
    if not 0 <= ordinal <= MAX_ORDINAL:
        raise ValueError(f"image ordinal {ordinal} is outside 0..{MAX_ORDINAL}: rebuild the search index")
