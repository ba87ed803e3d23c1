"""`paktum` — one command for running Paktum on one machine and for each service's tasks."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from paktum_cli.embedded_redis import discover_url
from paktum_common.contracts import Rating
from paktum_common.errors import BadPostError, PaktumError
from paktum_common.log import setup_logging
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import connect
from paktum_common.settings import Settings, load_settings

DATA_DIR_HELP = "data directory (PAKTUM_DATA_DIR, default ./paktum-data)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paktum", description="Paktum, a self-hosted image server.")
    parser.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run Redis, the api and the hashers on this machine")
    up.add_argument("--hashers", type=int, default=1, help="hasher processes to run (default 1)")
    up.add_argument("--port", type=int, help="api port (PAKTUM_API_PORT, default 8080)")
    up.add_argument("--host", help="api address (PAKTUM_API_HOST, default 127.0.0.1)")

    imp = commands.add_parser("import", help="publish the image files under a folder for indexing")
    imp.add_argument("directory", type=Path)
    imp.add_argument("--tags", default="", help='tags for every image, separated by spaces: "a b"')
    imp.add_argument("--rating", help="rating for every image: general, safe, questionable, explicit")
    imp.add_argument("--wait", action="store_true", help="wait until the hashers have handled every post")

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
        sys.exit(run_up(settings, args.hashers))
    if args.command == "import":
        sys.exit(asyncio.run(_import(settings, args.directory, args.tags, args.rating, args.wait)))
    if args.command == "reindex":
        sys.exit(asyncio.run(_reindex(settings, args.source, args.target, args.batch)))
    if args.command == "scrape":
        sys.exit(_scrape(settings, args.queries, args.source, args.full, args.max_posts))
    if args.command == "cleanup":
        from paktum_cleanup.main import run_once

        sys.exit(run_once(_with_redis(settings), args.repair))


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


async def _import(settings: Settings, directory: Path, tags: str, rating: str | None, wait: bool) -> int:
    from paktum_scraper.local import ImportReport, last_entry, local_posts
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
    assert settings.redis_url
    redis = connect(settings.redis_url)
    try:
        # Rejections of this import are the dead letters after this one (see _wait_for_hashers).
        since = await last_entry(redis, settings.dead_letter_stream)
    finally:
        await redis.aclose()
    _allow_import_folder(settings, directory)
    report = ImportReport()
    published = await publish(settings, local_posts(directory, tags.split(), fixed_rating, report))
    problems = ", ".join(f"{n} {kind}" for kind, n in sorted(report.problems.items())) or "none"
    print(f"paktum import: found {report.found} image files, published {published}; problems: {problems}")
    if report.hidden:
        print(
            f"paktum import: skipped {report.hidden} hidden image files (a name starting with '.', the file's "
            "or a folder's: tools' caches and metadata, like .thumbnails/ or macOS's ._ files)"
        )
    if wait:
        await _wait_for_hashers(settings, directory, since)
    return 0


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


async def _wait_for_hashers(settings: Settings, directory: Path, since: str) -> None:
    from paktum_scraper.local import rejected_since

    assert settings.redis_url
    redis = connect(settings.redis_url)
    queue = IngestQueue(redis, settings)
    try:
        started = time.monotonic()
        while True:
            waiting, pending = await queue.depth()
            if waiting == 0 and pending == 0:
                break
            await asyncio.sleep(0.25)
        dead = await rejected_since(redis, settings.dead_letter_stream, since, directory)
        print(
            f"paktum import: the hashers are done after {time.monotonic() - started:.1f}s; "
            f"{dead} posts rejected of this import (the reasons are in the stream {settings.dead_letter_stream})"
        )
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
