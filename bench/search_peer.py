"""The search peer for bench/search.py: the same documents and queries in Tantivy, with Paktum's semantics.

Tantivy (PyPI `tantivy`, the `bench` dependency group) answers what our backends answer, so a ratio of the two
compares like with like:

- exact totals (its count collector), and every term of SearchQuery: whole tags (a `raw` field, one term per
  tag), `tag*` (a regex over the term dictionary, so `_` and `%` are plain characters), none/any tags, ratings,
  width/height/size/added ranges (fast fields), full-text words (the words of each tag as the embedded backend
  makes them, `paktum_common.search.bitmaps.words_of`, indexed as terms; a quoted term of several words needs
  every one of them, as there);
- `order:-added` / `order:added` by a fast field holding (added, insertion order), the order SQLite sorts by;
- `order:random`, a uniform sample of all hits: one pass of a histogram aggregation counts the hits in each
  block of the insertion-order field (about BUCKETS blocks), `limit` positions are drawn from 0..total-1, and
  one search reads the hits of the blocks holding them in insertion order (the query AND those blocks' ranges
  of the indexed insertion order), so a query reads its hits once plus at most `limit` blocks;
- tag autocomplete: the term dictionary walked from the prefix with each term's document frequency, most used
  first, ties by name. Exact because this index is written once and never has a document deleted (a deleted
  document stays in the document frequency until its segment is merged).

The index is built once under bench/.corpus (`tantivy-<count>`, like the SQLite corpus) and reused.
`.venv/bin/python bench/search_peer.py --images N` measures it alone: build documents/s, per-query p95.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import tantivy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.search when run as a script

from paktum_common.contracts import ImageDocument
from paktum_common.search import NumericFilter, Order, SearchQuery, parse_query
from paktum_common.search.bitmaps import words_of

SCHEMA_VERSION = 3
T = TypeVar("T")
ORD_BITS = 24  # insertion order in the low bits of the sort key: up to 16.7 million documents
BUCKETS = 4096  # about this many histogram buckets over insertion order for random sampling
MIN_BLOCK = 64  # insertion-order positions per bucket, at the least
_REGEX_META = set("\\.+*?()|[]{}^$#&-~")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("tags", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("rating", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("words", tokenizer_name="whitespace", index_option="basic")  # words_of's, space-joined
    for name in ("width", "height", "size", "added"):
        builder.add_integer_field(name, fast=True)
    # Indexed too: a block of insertion order is then a range over the term dictionary, not a scan of the column.
    builder.add_unsigned_field("ord", indexed=True, fast=True)
    builder.add_unsigned_field("sort", fast=True)  # added << ORD_BITS | ord
    return builder.build()


def _regex_prefix(prefix: str) -> str:
    return "".join("\\" + c if c in _REGEX_META else c for c in prefix) + ".*"


class TantivyPeer:
    """A Tantivy index of ImageDocuments at `path` (a directory), answering SearchQuery as our backends do."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.schema = _schema()
        self.index: tantivy.Index | None = None
        self.from_cache = False
        self.built_seconds = 0.0  # how long the build took, also when it was cached (recorded then)

    @property
    def _marker(self) -> Path:
        return self.path / "paktum-build.json"

    def build(self, docs: list[ImageDocument]) -> float:
        """Index `docs` once; the seconds it took, or 0.0 when the index was already built (`built_seconds` has it)."""
        if self._marker.exists():
            recorded = json.loads(self._marker.read_text())
            if recorded.get("docs") == len(docs) and recorded.get("schema") == SCHEMA_VERSION:
                self.index = tantivy.Index.open(str(self.path))
                self.from_cache = True
                self.built_seconds = float(recorded["seconds"])
                return 0.0
        if len(docs) >= 1 << ORD_BITS:
            raise ValueError(f"the peer holds at most {(1 << ORD_BITS) - 1:,} documents, got {len(docs):,}")
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        started = time.perf_counter()
        index = tantivy.Index(self.schema, path=str(self.path))
        writer = index.writer(heap_size=256_000_000)
        for ordinal, doc in enumerate(docs):
            added = min(max(doc.added_seconds, 0), 2**32 - 1)  # the embedded backend's order clips it so too
            row = tantivy.Document()
            row.add_text("id", doc.ID)
            for tag in doc.Tags:
                row.add_text("tags", tag)
            row.add_text("rating", doc.Rating.value)
            row.add_text("words", " ".join(word for tag in doc.Tags for word in words_of(tag)))
            row.add_integer("width", doc.Width)
            row.add_integer("height", doc.Height)
            row.add_integer("size", doc.Size)
            row.add_integer("added", doc.added_seconds)
            row.add_unsigned("ord", ordinal)
            row.add_unsigned("sort", added << ORD_BITS | ordinal)
            writer.add_document(row)
        writer.commit()
        writer.wait_merging_threads()
        seconds = time.perf_counter() - started
        self._marker.write_text(json.dumps({"docs": len(docs), "seconds": seconds, "schema": SCHEMA_VERSION}))
        index.reload()
        self.index = index
        self.from_cache = False
        self.built_seconds = seconds
        return seconds

    def _searcher(self) -> tantivy.Searcher:
        if self.index is None:
            raise RuntimeError("build() the peer index first")
        return self.index.searcher()

    # -- the query ------------------------------------------------------------------------------------

    def _term(self, field: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, field, value, index_option="basic")

    def _prefix(self, prefix: str) -> tantivy.Query:
        return tantivy.Query.regex_query(self.schema, "tags", _regex_prefix(prefix))

    def _numeric(self, numeric: NumericFilter) -> tantivy.Query:
        value = int(numeric.value)
        lower: int | None = value if numeric.op in (">", ">=", "=") else None
        upper: int | None = value if numeric.op in ("<", "<=", "=") else None
        return tantivy.Query.range_query(
            self.schema, numeric.field, tantivy.FieldType.Integer, lower, upper,
            include_lower=numeric.op != ">", include_upper=numeric.op != "<",
        )  # fmt: skip

    def _words(self, word: str) -> list[tantivy.Query]:
        tokens = words_of(word)
        if not tokens:
            return [tantivy.Query.empty_query()]
        return [self._term("words", token) for token in dict.fromkeys(tokens)]

    def query(self, query: SearchQuery) -> tantivy.Query:
        must: list[tantivy.Query] = [self._term("tags", tag) for tag in query.all_tags]
        must_not: list[tantivy.Query] = [self._term("tags", tag) for tag in query.none_tags]
        if query.any_tags:
            must.append(tantivy.Query.term_set_query(self.schema, "tags", list(query.any_tags)))
        must.extend(self._prefix(prefix) for prefix in query.prefixes)
        must_not.extend(self._prefix(prefix) for prefix in query.none_prefixes)
        if query.ratings:
            must.append(tantivy.Query.term_set_query(self.schema, "rating", [r.value for r in query.ratings]))
        must.extend(self._numeric(numeric) for numeric in query.numeric)
        for word in query.words:
            must.extend(self._words(word))
        if not must:
            must.append(tantivy.Query.all_query())
        if len(must) == 1 and not must_not:
            return must[0]
        clauses = [(tantivy.Occur.Must, q) for q in must] + [(tantivy.Occur.MustNot, q) for q in must_not]
        return tantivy.Query.boolean_query(clauses)

    # -- answers --------------------------------------------------------------------------------------

    def search(self, query: SearchQuery, limit: int, offset: int = 0) -> tuple[int, list[str]]:
        """(exact total, the IDs of the page), as SearchBackend.search pages its hits."""
        searcher = self._searcher()
        compiled = self.query(query)
        if query.order is Order.random:
            return self._random(searcher, compiled, limit, offset)
        order = tantivy.Order.Desc if query.order is Order.added_desc else tantivy.Order.Asc
        # Tantivy refuses a limit of 0 (it panics); ask for one and show none.
        result = searcher.search(compiled, max(limit, 1), count=True, order_by_field="sort", offset=offset, order=order)
        total = result.count
        assert total is not None
        return total, self._ids(searcher, [address for _, address in result.hits[:limit]])

    def _block(self, searcher: tantivy.Searcher) -> int:
        # About BUCKETS blocks: the histogram stays small, and so do the blocks a sample reads.
        size = MIN_BLOCK
        while size * BUCKETS < searcher.num_docs:
            size *= 2
        return size

    def _random(
        self, searcher: tantivy.Searcher, compiled: tantivy.Query, limit: int, offset: int
    ) -> tuple[int, list[str]]:
        block = self._block(searcher)
        buckets = searcher.aggregate(compiled, {"b": {"histogram": {"field": "ord", "interval": block}}})["b"]
        starts: list[int] = []  # for each block holding hits: the hits before it, its first ordinal, its hits
        lows: list[int] = []
        sizes: list[int] = []
        total = 0
        for bucket in buckets["buckets"]:
            if bucket["doc_count"]:
                starts.append(total)
                lows.append(int(bucket["key"]))
                sizes.append(int(bucket["doc_count"]))
                total += sizes[-1]
        if total == 0 or offset >= total:
            return total, []
        positions = random.sample(range(total), min(limit, total))
        if not positions:
            return total, []
        picked = sorted({bisect.bisect_right(starts, p) - 1 for p in positions})
        # One search reads every hit of the picked blocks in insertion order; a position is then an index into it.
        spans = [
            tantivy.Query.range_query(
                self.schema, "ord", tantivy.FieldType.Unsigned, lows[b], lows[b] + block - 1, use_inverted_index=True
            )
            for b in picked
        ]
        span = spans[0] if len(spans) == 1 else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in spans])
        within = tantivy.Query.boolean_query([(tantivy.Occur.Must, compiled), (tantivy.Occur.Must, span)])
        read = sum(sizes[b] for b in picked)
        hits = searcher.search(within, read, count=False, order_by_field="ord", order=tantivy.Order.Asc).hits
        if len(hits) != read:
            raise RuntimeError(f"the picked blocks held {len(hits)} hits, the histogram counted {read}")
        base: dict[int, int] = {}  # picked block -> where its hits start in `hits`
        before = 0
        for b in picked:
            base[b] = before
            before += sizes[b]
        addresses = []
        for p in positions:
            b = bisect.bisect_right(starts, p) - 1
            addresses.append(hits[base[b] + p - starts[b]][1])
        random.shuffle(addresses)
        return total, self._ids(searcher, addresses)

    def _ids(self, searcher: tantivy.Searcher, addresses: Iterable[tantivy.DocAddress]) -> list[str]:
        return [str(searcher.doc(address).get_first("id")) for address in addresses]

    def tags(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """The `limit` most used tags starting with `prefix`, ties by name: the term dictionary's counts."""
        return [
            (str(term), int(count)) for term, count in self._searcher().terms_with_prefix("tags", prefix, limit=limit)
        ]


# -- a standalone measurement -------------------------------------------------------------------------


def _timed(call: Callable[[], T], repeat: int) -> tuple[T, str]:
    """The last answer of `repeat` calls, and their median, p95 and maximum in milliseconds as columns."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    return answer, f"{statistics.median(timings):>8.2f} {p95:>8.2f} {timings[-1]:>8.2f}"


def main() -> None:
    from bench.search import CORPUS, QUERIES, corpus_documents

    parser = argparse.ArgumentParser(description="Tantivy alone on bench/search.py's corpus and queries")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    CORPUS.mkdir(exist_ok=True)
    peer = TantivyPeer(CORPUS / f"tantivy-{args.images}")
    peer.build(corpus_documents(args.images))
    seconds = peer.built_seconds
    cached = " (as recorded when it was built)" if peer.from_cache else ""
    print(f"tantivy: {args.images:,} documents indexed in {seconds:.1f} s{cached}: {args.images / seconds:,.0f}/s")
    print(f"{'query':<28} {'hits':>8} {'median':>8} {'p95':>8} {'max':>8}   (ms, limit {args.limit})")
    for text in QUERIES:
        query = parse_query(text)
        (total, _), columns = _timed(lambda query=query: peer.search(query, args.limit), args.repeat)
        print(f"{text or '(all)':<28} {total:>8,} {columns}")
    print(f"\n{'tag autocomplete (prefix)':<28} {'tags':>8} {'median':>8} {'p95':>8} {'max':>8}")
    for prefix in ("tag_", "tag_1", "tag_12", "tag_123"):
        found, columns = _timed(lambda prefix=prefix: peer.tags(prefix, 10), args.repeat)
        print(f"{prefix:<28} {len(found):>8} {columns}")


if __name__ == "__main__":
    main()
