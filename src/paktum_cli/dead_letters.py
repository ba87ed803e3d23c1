"""`paktum dead-letters`: the posts the hashers gave up on, grouped by reason, and their replay once fixed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paktum_common.contracts import DeadLetter, Post
from paktum_common.errors import PermanentError
from paktum_common.queue import IngestQueue

EXAMPLES = 3  # dead letters shown per reason
_VARYING = re.compile(r"\b(?P<md5>[0-9a-f]{32})\b|\d+")


def reason_kind(reason: str) -> str:
    """A reason with what differs from post to post (md5s, counts, sizes) blanked, so alike reasons group."""
    return _VARYING.sub(lambda m: "<md5>" if m.group("md5") else "N", reason) or "(no reason recorded)"


def describe(letter: DeadLetter) -> str:
    """One line naming the post of a dead letter (source, post id, file), with its full reason."""
    try:
        post = Post.from_stream(letter.fields)
        who = f"{post.source} post {post.source_id} ({post.file_url})"
    except PermanentError:
        who = "an entry that is not a post"
    return f"{who}, entry {letter.entry_id}: {letter.reason}"


@dataclass
class ReasonGroup:
    kind: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


async def grouped(queue: IngestQueue) -> list[ReasonGroup]:
    """Every dead letter counted under its kind of reason, the most frequent first (bounded examples)."""
    groups: dict[str, ReasonGroup] = {}
    async for _, letter in queue.dead_letters():
        kind = reason_kind(letter.reason)
        group = groups.setdefault(kind, ReasonGroup(kind))
        group.count += 1
        if len(group.examples) < EXAMPLES:
            group.examples.append(describe(letter))
    return sorted(groups.values(), key=lambda g: (-g.count, g.kind))


async def replay(queue: IngestQueue, reason: str | None) -> tuple[int, int]:
    """Publish the dead letters whose reason contains `reason` (every one without it) to the ingest stream
    again, each removed from the dead letters in the same step. Returns (replayed, left)."""
    needle = reason.lower() if reason else None
    replayed = left = 0
    async for dead_id, letter in queue.dead_letters():
        if needle is not None and needle not in letter.reason.lower():
            left += 1
        elif await queue.replay(dead_id, letter):
            replayed += 1
    return replayed, left
