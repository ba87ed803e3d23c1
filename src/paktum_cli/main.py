"""`paktum` — one command for running Paktum on one machine and for each service's tasks."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis

from paktum_cli.embedded_redis import discover_url
from paktum_common.contracts import Rating
from paktum_common.errors import BadPostError, PaktumError
from paktum_common.log import setup_logging
from paktum_common.queue import IngestQueue, PublishInterruptedError
from paktum_common.redis_client import connect, is_outage
from paktum_common.settings import Settings, load_settings

DATA_DIR_HELP = "data directory (PAKTUM_DATA_DIR, default ./paktum-data)"
HASHER_SILENCE = 30.0  # `import --wait`: seconds without any hasher reading the stream before giving up


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paktum", description="Paktum, a self-hosted image server.")
    parser.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run Redis, the api and the hashers on this machine")
    up.add_argument("--hashers", type=int, default=1, help="hasher processes to run (default 1)")
    up.add_argument("--port", type=int, help="api port (PAKTUM_API_PORT, default 8080)")
    up.add_argument("--host", help="api address (PAKTUM_API_HOST, default 127.0.0.1)")
    up.add_argument(
        "--api-workers", type=int, default=None,
        help=f"api processes sharing the port, each restarted on its own if it dies (default: the cores, {cores()})",
    )  # fmt: skip

    imp = commands.add_parser("import", help="publish the image files under a folder for indexing")
    imp.add_argument("directory", type=Path)
    imp.add_argument("--tags", default="", help='tags for every image, separated by spaces: "a b"')
    imp.add_argument("--rating", help="rating for every image: general, safe, questionable, explicit")
    imp.add_argument("--wait", action="store_true", help="wait until the hashers have handled every post")
    imp.add_argument(
        "--hasher-timeout", type=float, default=HASHER_SILENCE,
        help=f"with --wait: give up when no hasher has read the stream for N seconds (default {HASHER_SILENCE:.0f}; "
        "at least half of PAKTUM_RECLAIM_IDLE_MS)",
    )  # fmt: skip

    dead = commands.add_parser(
        "dead-letters", help="list the posts the hashers gave up on, by reason; replay them once the cause is fixed"
    )
    dead.add_argument("--replay", action="store_true", help="publish them for indexing again (all, or --reason)")
    dead.add_argument("--reason", help="only dead letters whose reason contains TEXT (case-insensitive)")

    move = commands.add_parser("reindex", help="copy every document from one search backend to another")
    move.add_argument(
        "--from", dest="source", required=True, help="the index to read: sqlite:///path or http://host:7700"
    )
    move.add_argument(
        "--to", dest="target", required=True, help="the index to write (documents with the same ID are replaced)"
    )
    move.add_argument("--batch", type=int, default=1000, help="documents per page read and written (default 1000)")

    scr = commands.add_parser(
        "scrape", help="scrape booru sites by tag and publish the posts for indexing",
        description="Queries: the arguments, else standard input (one per line, tags separated by spaces).",
    )  # fmt: skip
    scr.add_argument("queries", nargs="*", help='queries, each one argument: hug "cat_ears solo"')
    scr.add_argument("--source", help="source name(s), comma-separated (PAKTUM_SCRAPE_SOURCE, default gelbooru)")
    scr.add_argument("--full", action="store_true", help="ignore the cursors: scrape every query to its end")
    scr.add_argument("--max-posts", type=int, help="publish at most N posts per query (PAKTUM_SCRAPE_MAX_POSTS)")

    clean = commands.add_parser("cleanup", help="purge banned images, sweep for inconsistencies, regroup variants")
    clean.add_argument("--repair", action="store_true", help="fix what the consistency sweep finds")

    rehash = commands.add_parser(
        "rehash", help="hash every stored image again by this version's rules, then regroup variants",
        description="Reads each image's stored file, hashes it as the hasher does now, and rewrites the hashes "
        "that differ; stopped, the next run goes on where it stopped.",
    )  # fmt: skip
    rehash.add_argument("--restart", action="store_true", help="start from the first image, not where a run stopped")
    rehash.add_argument("--no-regroup", action="store_true", help="leave the regroup to the next cleanup run")

    # Global options are accepted after every command too (`paktum up --data-dir D`, as the README writes it);
    # SUPPRESS keeps a value given before the command when none is given after it.
    for command in commands.choices.values():
        command.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=DATA_DIR_HELP)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if getattr(args, "port", None) is not None:
        overrides["api_port"] = args.port
    if getattr(args, "host", None):
        overrides["api_host"] = args.host
    settings = load_settings(**overrides)
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "up":
        from paktum_cli.up import run_up

        if args.hashers < 1:
            sys.exit("paktum up: --hashers must be at least 1")
        api_workers = cores() if args.api_workers is None else args.api_workers
        if api_workers < 1:
            sys.exit("paktum up: --api-workers must be at least 1")
        sys.exit(run_up(settings, args.hashers, api_workers))
    if args.command == "import":
        wait = args.hasher_timeout if args.wait else None
        sys.exit(asyncio.run(_import(settings, args.directory, args.tags, args.rating, wait)))
    if args.command == "dead-letters":
        sys.exit(asyncio.run(_dead_letters(_with_redis(settings), args.replay, args.reason)))
    if args.command == "reindex":
        sys.exit(asyncio.run(_reindex(settings, args.source, args.target, args.batch)))
    if args.command == "scrape":
        sys.exit(_scrape(settings, args.queries, args.source, args.full, args.max_posts))
    if args.command == "cleanup":
        from paktum_cleanup.main import run_once

        sys.exit(run_once(_with_redis(settings), args.repair))
    if args.command == "rehash":
        sys.exit(_rehash(_with_redis(settings), args.restart, not args.no_regroup))


def _with_redis(settings: Settings) -> Settings:
    if settings.redis_url:
        return settings
    url = discover_url(settings.data_dir)
    if not url:
        sys.exit(
            f"paktum: Paktum is not running with data directory {settings.data_dir} "
            "(start `paktum up`, or set PAKTUM_REDIS_URL)"
        )
    return settings.model_copy(update={"redis_url": url})


async def _import(settings: Settings, directory: Path, tags: str, rating: str | None, wait: float | None) -> int:
    from paktum_scraper.local import ImportReport, local_posts
    from paktum_scraper.publish import publish

    if not directory.is_dir():
        print(f"paktum import: {directory} is not a directory", file=sys.stderr)
        return 2
    try:
        fixed_rating = Rating.parse(rating) if rating else None
    except BadPostError as exc:
        print(f"paktum import: {exc} (use general, safe, questionable or explicit)", file=sys.stderr)
        return 2
    settings = _with_redis(settings)
    _allow_import_folder(settings, directory)
    report = ImportReport()
    try:
        # Rejections of this import are the dead letters after this one (see _wait_for_hashers).
        since = await _last_dead_letter(settings) if wait is not None else ""
        published = await publish(settings, local_posts(directory, tags.split(), fixed_rating, report))
    except PublishInterruptedError as exc:
        print(
            f"paktum import: Redis went away after {exc.published} posts were published "
            f"({exc.in_flight} more in flight may or may not have been): {exc}. "
            "Run the import again once Redis is back: a post published twice is indexed once.",
            file=sys.stderr,
        )
        return 1
    problems = ", ".join(f"{n} {kind}" for kind, n in sorted(report.problems.items())) or "none"
    print(f"paktum import: found {report.found} image files, published {published}; problems: {problems}")
    if report.hidden:
        print(
            f"paktum import: skipped {report.hidden} hidden image files (a name starting with '.', the file's "
            "or a folder's: tools' caches and metadata, like .thumbnails/ or macOS's ._ files)"
        )
    if wait is not None:
        return await _wait_for_hashers(settings, wait, directory, since)
    return 0


async def _last_dead_letter(settings: Settings) -> str:
    from paktum_scraper.local import last_entry

    assert settings.redis_url
    redis = connect(settings.redis_url)
    try:
        return await last_entry(redis, settings.dead_letter_stream)
    except Exception as exc:
        if not is_outage(exc):
            raise
        raise PublishInterruptedError(0, 0, exc) from exc
    finally:
        await redis.aclose()


def _allow_import_folder(settings: Settings, directory: Path) -> None:
    """Let the hashers of this data directory read `directory`: the stream cannot grant that, the disk can."""
    from paktum_common.local_roots import allow_root

    if not settings.data_dir.is_dir():
        print(
            f"paktum import: no data directory {settings.data_dir}: hashers run elsewhere read these files only "
            f"if PAKTUM_LOCAL_ROOTS lists {directory.resolve()}",
            file=sys.stderr,
        )
        return
    folder = allow_root(settings, directory)
    print(f"paktum import: hashers of {settings.data_dir} may read files under {folder} ({settings.local_roots_file})")


async def _dead_letters(settings: Settings, replay: bool, reason: str | None) -> int:
    from paktum_cli import dead_letters

    async def run(redis: Redis) -> int:
        queue = IngestQueue(redis, settings)
        if replay:
            replayed, left = await dead_letters.replay(queue, reason)
            print(f"paktum dead-letters: {replayed} posts published for indexing again; {left} dead letters left")
            return 0
        groups = await dead_letters.grouped(queue)
        total = sum(group.count for group in groups)
        print(f"paktum dead-letters: {total} dead letters, {len(groups)} kinds of reason")
        for group in groups:
            print(f"{group.count:>8}  {group.kind}")
            for example in group.examples:
                print(f"          e.g. {example}")
        return 0

    return await _redis_session(settings, "dead-letters", run)


async def _redis_session(settings: Settings, command: str, run: Callable[[Redis], Awaitable[int]]) -> int:
    """`run` with a Redis client; Redis away ends the command with exit 1 and one line, not a traceback."""
    assert settings.redis_url
    redis = connect(settings.redis_url)
    try:
        return await run(redis)
    except Exception as exc:
        if not is_outage(exc):
            raise
        print(f"paktum {command}: Redis is unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


def _rehash(settings: Settings, restart: bool, regroup: bool) -> int:
    """`paktum rehash`: progress per batch on stderr, the summary, then the cleanup's regroup (its own summary)."""
    from paktum_hasher.rehash import RehashSummary, rehash_once

    def report(summary: RehashSummary) -> None:
        print(f"paktum rehash: {summary.line()}", file=sys.stderr, flush=True)

    try:
        summary = asyncio.run(rehash_once(settings, restart, report))
    except Exception as exc:
        if not is_outage(exc):
            raise
        print(f"paktum rehash: Redis or the index is unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"paktum rehash: {summary.line()}", flush=True)
    if not regroup or not (summary.changed or summary.finished):
        return 0
    from paktum_cleanup.main import run_once

    return run_once(settings, repair=False)


async def _reindex(settings: Settings, source: str, target: str, batch: int) -> int:
    from paktum_cli.reindex import reindex

    if batch < 1:
        print("paktum reindex: --batch must be at least 1", file=sys.stderr)
        return 2
    if source.rstrip("/") == target.rstrip("/"):
        print("paktum reindex: --from and --to name the same index", file=sys.stderr)
        return 2
    try:
        await reindex(settings, source, target, batch)
    except PaktumError as exc:
        print(f"paktum reindex: {exc}", file=sys.stderr)
        return 1
    return 0


def _scrape(settings: Settings, queries: list[str], source: str | None, full: bool, max_posts: int | None) -> int:
    from paktum_scraper.run import default_progress, exit_code, parse_queries, scrape, summary

    if queries:
        parsed = parse_queries("\n".join(queries))
    elif sys.stdin.isatty():
        print("paktum scrape: give queries as arguments or on standard input, one per line", file=sys.stderr)
        return 2
    else:
        parsed = parse_queries(sys.stdin.read())
    if not parsed:
        print("paktum scrape: no queries given", file=sys.stderr)
        return 2
    if max_posts is not None and max_posts < 0:
        print("paktum scrape: --max-posts must be 0 (no bound) or more", file=sys.stderr)
        return 2
    sources = [name.strip() for name in source.split(",") if name.strip()] if source else settings.scrape_source
    settings = _with_redis(settings)
    bound = settings.scrape_max_posts if max_posts is None else max_posts
    try:
        reports = asyncio.run(
            scrape(settings, sources, parsed, full=full, max_posts=bound, progress=default_progress())
        )
    except PaktumError as exc:
        print(f"paktum scrape: {exc}", file=sys.stderr)
        return 2
    for line in summary(reports):
        print(f"paktum scrape: {line}")
    return exit_code(reports)


async def _wait_for_hashers(settings: Settings, silence: float, directory: Path, since: str) -> int:
    """Wait until every post is handled; give up (non-zero) when no hasher has read the stream for
    `silence` seconds, or when Redis goes away."""
    # A hasher busy with a long batch still renews its claims every third of PAKTUM_RECLAIM_IDLE_MS.
    from paktum_scraper.local import rejected_since

    silence = max(silence, settings.reclaim_idle_ms / 2000)

    async def wait(redis: Redis) -> int:
        queue = IngestQueue(redis, settings)
        started = last_seen = time.monotonic()
        while True:
            waiting, pending = await queue.depth()
            if waiting == 0 and pending == 0:
                break
            # A hasher in a blocking read touches the group every PAKTUM_READ_BLOCK_MS: its idle time stays low.
            idle_ms = [int(c.get("idle", 0)) for c in await queue.consumers()]
            if idle_ms and min(idle_ms) / 1000 < silence:
                last_seen = time.monotonic()
            elif time.monotonic() - last_seen >= silence:
                print(
                    f"paktum import: no hasher has read the stream {settings.stream} for {silence:.0f}s "
                    f"({waiting} posts waiting, {pending} in progress); start one (`paktum up`) and they "
                    "are indexed then",
                    file=sys.stderr,
                )
                return 3
            await asyncio.sleep(0.25)
        dead = await rejected_since(redis, settings.dead_letter_stream, since, directory)
        print(
            f"paktum import: the hashers are done after {time.monotonic() - started:.1f}s; "
            f"{dead} posts rejected of this import (the reasons are in the stream {settings.dead_letter_stream})"
        )
        return 0

    return await _redis_session(settings, "import", wait)


if __name__ == "__main__":
    main()
