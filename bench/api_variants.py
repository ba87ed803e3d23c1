"""Variant recall through a live Paktum: what its api answers, beside what bench/variants.py computes from hashes.

It writes the first --limit pictures of bench/variants.py's sample and their variants (the blank ones left out)
into a temporary folder, starts `paktum up` with its embedded defaults on a fresh temporary data directory,
runs `paktum import DIR --wait` and `paktum cleanup`, then asks the api, for every image, its related images
(GET /api/image/{id}/related) and, for every file, the images nearest to it (POST /api/similar, limit 100).
Files with the same bytes are one image in Paktum: the first is kept, the later ones are left out of everything.
It prints bench/variants.py's rows (recall per kind, false pairs) for:

- api ingest: two files related either way as the hasher linked them, before the cleanup;
- api related: two files related either way (their variant groups, after the cleanup);
- api similar: a variant found by searching with it for its original; a false pair when either file's search
  finds the other;
- bench grouped, bench direct: bench/variants.py's `paktum groups` and `paktum` rows on the same files: the live
  rule (paktum_common.phash.match) as connected components, and pair by pair;

then how many file pairs the api and the bench disagree on (related against grouped, over every pair; similar
against direct, over the variant-original pairs) and the first of them. Paktum is stopped (SIGINT to its process
group, SIGKILL after 30 s) and the temporary folders removed, also on an error or Ctrl-C.

    .venv/bin/python bench/api_variants.py [--limit N]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import httpx
import numpy as np
import variants
from hasher import HERE
from PIL import Image
from variants import PHASH_DISTANCE, File

from paktum_cli.embedded_redis import free_port
from paktum_common.contracts import MEDIA_TYPES

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
FAR = 10**6  # report()'s "no match"
SIMILAR_LIMIT = 100
START_SECONDS = 120
STOP_SECONDS = 30
SHOWN = 10  # disagreements listed per comparison


def paktum_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "paktum"), *args]


def pictures(corpus: Path, limit: int) -> list[File]:
    """The first `limit` (0: all) pictures of bench/variants.py's sample that open, in its order, each original followed
    by its variants that are not blank (as bench/variants.py's main makes them)."""
    files: list[File] = []
    picture = 0
    for sample in variants.sample_pictures(corpus):
        if limit and picture >= limit:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                data, made, _, blank = variants.variants_of((corpus / sample.path).read_bytes())
        except OSError:
            continue
        files.append(File(picture, "original", data))
        files += [File(picture, kind, variant) for kind, variant in made.items() if kind not in blank]
        picture += 1
    return files


def extension(data: bytes) -> str:
    """The file extension for a picture's format, read from its bytes."""
    fmt = Image.open(io.BytesIO(data)).format or ""
    if fmt not in EXTENSIONS:
        raise ValueError(f"a picture in a format Paktum's import would not name: {fmt or 'unknown'}")
    return EXTENSIONS[fmt]


def write_files(files: list[File], folder: Path) -> tuple[list[File], list[str]]:
    """Write each file as p<picture>_<kind>.<ext> (variants are JPEG), leaving out a file whose bytes an earlier
    one has (one image in Paktum), and a picture whose original is such a file; the files kept and their names."""
    seen: set[str] = set()
    dropped_pictures: set[int] = set()
    kept: list[File] = []
    names: list[str] = []
    for f in files:
        md5 = hashlib.md5(f.data).hexdigest()
        if md5 in seen or f.picture in dropped_pictures:
            dropped_pictures |= {f.picture} if f.kind == "original" else set()
            continue
        seen.add(md5)
        name = f"p{f.picture:03d}_{f.kind}.{extension(f.data) if f.kind == 'original' else 'jpg'}"
        (folder / name).write_bytes(f.data)
        kept.append(f)
        names.append(name)
    return kept, names


def paktum_env(data_dir: Path, port: int) -> dict[str, str]:
    """The environment of every paktum command: the embedded defaults (no PAKTUM_ setting from outside, so no
    PAKTUM_REDIS_URL either) on `data_dir`, the api on loopback at `port`, no periodic cleanup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(PAKTUM_DATA_DIR=str(data_dir), PAKTUM_API_HOST="127.0.0.1", PAKTUM_API_PORT=str(port),
               PAKTUM_CLEANUP_INTERVAL="0")  # fmt: skip
    return env


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def descendants(pid: int) -> dict[int, str]:
    """The processes below `pid` (`paktum up` starts each child in a session of its own), with their start times,
    so that one still running later is known to be the same process."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1]), fields[19]
    found: dict[int, str] = {}
    level = {pid}
    while level:
        level = {child for child, (parent, _) in parents.items() if parent in level and child not in found}
        found |= {child: parents[child][1] for child in level}
    return found


def kill_left(processes: dict[int, str]) -> None:
    for pid, started in processes.items():
        with contextlib.suppress(OSError, IndexError):
            if (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())[19] == started:
                os.kill(pid, signal.SIGKILL)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to `paktum up`'s process group, as Ctrl-C in its terminal; after STOP_SECONDS, SIGKILL to it and to
    every process that was below it (and to those that outlived a clean stop)."""
    children = descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(STOP_SECONDS)
    except ProcessLookupError:  # the group is gone already
        pass
    except subprocess.TimeoutExpired:
        print(f"paktum up did not stop within {STOP_SECONDS} s: killed", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    kill_left(children)


@contextmanager
def paktum_up(env: dict[str, str], log: Path) -> Iterator[str]:
    """`paktum up` running on `env`, its output in `log`; yields the api's base URL once it answers."""
    base = f"http://127.0.0.1:{env['PAKTUM_API_PORT']}"
    with log.open("wb") as out:
        process = subprocess.Popen(paktum_command("up"), env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise SystemExit(f"paktum up exited with code {process.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the api did not answer within {START_SECONDS} s:\n{tail(log)}")
            try:
                if httpx.get(f"{base}/api/search", params={"query": "", "limit": 1}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        stop(process)


def run(env: dict[str, str], *args: str) -> str:
    """A paktum command against the running Paktum; its output, or the script ends with it when the command
    fails."""
    done = subprocess.run(paktum_command(*args), env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode:
        raise SystemExit(f"paktum {args[0]} exited with code {done.returncode}:\n{output}")
    return output


def ask(
    base: str, files: list[File], names: list[str], with_similar: bool = True
) -> tuple[np.ndarray, np.ndarray, int, int, float]:
    """related[i, j]: file j is among file i's related images; similar[i, j]: POST /api/similar with file i
    answers file j (unless not `with_similar`). Also how many files are not indexed (no image under their md5), how
    many similar answers reached the limit (their farther matches cut off), and the wall seconds per request."""
    index = {hashlib.md5(f.data).hexdigest(): i for i, f in enumerate(files)}
    n = len(files)
    related = np.zeros((n, n), dtype=bool)
    similar = np.zeros((n, n), dtype=bool)
    with httpx.Client(base_url=base, timeout=120) as client:

        def related_of(md5: str) -> list[str] | None:
            answer = client.get(f"/api/image/{md5}/related")
            if answer.status_code == 404:
                return None
            answer.raise_for_status()
            return list(answer.json()["results"])

        def similar_to(i: int) -> list[str]:
            content_type = MEDIA_TYPES[names[i].rpartition(".")[2]].content_type
            answer = client.post("/api/similar", params={"limit": SIMILAR_LIMIT},
                                 files={"file": (names[i], files[i].data, content_type)})  # fmt: skip
            answer.raise_for_status()
            return [image["ID"] for image in answer.json()["results"]]

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            related_answers = list(pool.map(related_of, index))
            similar_answers = list(pool.map(similar_to, range(n))) if with_similar else []
        per_request = (time.monotonic() - started) / max(1, (1 + with_similar) * n)
    for i, found in enumerate(related_answers):
        related[i, [index[md5] for md5 in found or () if md5 in index]] = True
    for i, found in enumerate(similar_answers):
        similar[i, [index[md5] for md5 in found if md5 in index]] = True
    missing = sum(found is None for found in related_answers)
    capped = sum(len(found) >= SIMILAR_LIMIT for found in similar_answers)
    return related, similar, missing, capped, per_request


def as_distances(close: np.ndarray) -> np.ndarray:
    """A relation as the distance matrix report() reads: 0 where it holds."""
    return np.where(close, 0, FAR)


def similar_distances(similar: np.ndarray, files: list[File]) -> np.ndarray:
    """The api's search by image for report(): between files of one picture the variant's search finding its
    original (report() reads [original, variant], the original's row), between files of distinct pictures
    either file's search finding the other (a false pair as a user searching with either would see it)."""
    pictures = np.array([f.picture for f in files])
    distinct = pictures[:, None] != pictures[None, :]
    return as_distances(np.where(distinct, similar | similar.T, similar.T))


def compare(related: np.ndarray, similar: np.ndarray, groups: np.ndarray, direct: np.ndarray, files: list[File],
            names: list[str]) -> None:  # fmt: skip
    """The pairs the api and the bench disagree on: api related against bench grouped over every pair of files;
    api similar (the variant's search finding its original) against bench direct over the variant-original
    pairs."""
    grouped_close = groups <= PHASH_DISTANCE
    differ = [(int(i), int(j)) for i, j in np.argwhere(np.triu((related | related.T) != grouped_close, 1))]
    print(f"\napi related against bench grouped: {len(differ)} file pairs differ")
    for i, j in differ[:SHOWN]:
        print(f"  {names[i]:<24} {files[i].kind:<10} {names[j]:<24} {files[j].kind:<10} "
              f"api={bool(related[i, j] or related[j, i])} bench={bool(grouped_close[i, j])} "
              f"direct distance={direct[i, j]}")  # fmt: skip
    original = {f.picture: i for i, f in enumerate(files) if f.kind == "original"}
    pairs = [(i, original[f.picture]) for i, f in enumerate(files) if f.kind != "original"]
    differ = [(i, o) for i, o in pairs if bool(similar[i, o]) != bool(direct[i, o] <= PHASH_DISTANCE)]
    print(f"api similar against bench direct: {len(differ)} of {len(pairs)} variant-original pairs differ")
    for i, o in differ[:SHOWN]:
        print(f"  {names[i]:<24} {files[i].kind:<10} -> {names[o]:<24} api={bool(similar[i, o])} "
              f"bench={bool(direct[i, o] <= PHASH_DISTANCE)} direct distance={direct[i, o]}")  # fmt: skip


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so that a SIGTERM, too, stops Paktum and removes the folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / ".corpus", help="where packages are unpacked")
    parser.add_argument("--limit", type=int, default=60, help="this many pictures (0: all)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    with tempfile.TemporaryDirectory(prefix="paktum-api-variants-") as temporary:
        folder, data_dir = Path(temporary) / "files", Path(temporary) / "data"
        folder.mkdir()
        made = pictures(args.corpus, args.limit)
        files, names = write_files(made, folder)
        count = len({f.picture for f in files})
        print(f"{count} pictures, {len(files) - count} variants (blank ones not made), {len(files)} files; "
              f"{len(made) - len(files)} left out as the same bytes as an earlier file")  # fmt: skip
        env = paktum_env(data_dir, free_port())
        started = time.monotonic()
        with paktum_up(env, data_dir.parent / "up.log") as base:
            up = time.monotonic()
            imported = run(env, "import", str(folder), "--wait")
            rejected = re.search(r"(\d+) posts? rejected", imported)
            if rejected is None or int(rejected[1]):
                print(f"paktum import: {rejected[1] if rejected else 'an unknown number of'} posts rejected")
            as_linked = ask(base, files, names, with_similar=False)[0]  # the hasher's linking, before any cleanup
            run(env, "cleanup")
            indexed = time.monotonic()
            related, similar, missing, capped, per_request = ask(base, files, names)
            print(f"paktum up {up - started:.1f} s, import and cleanup {indexed - up:.1f} s, "
                  f"{2 * len(files)} api requests {time.monotonic() - indexed:.1f} s; {missing} files not indexed, "
                  f"{capped} similar answers at the limit of {SIMILAR_LIMIT}")  # fmt: skip
    hashes, seconds = variants.timed_map(variants.paktum, files)
    direct = linked = variants.live_matrix(hashes)  # type: ignore[arg-type]
    groups = variants.grouped(linked, PHASH_DISTANCE, variants.hue_rows(hashes))  # type: ignore[arg-type]
    print("recall per kind; false pairs: pairs of distinct pictures linked by any of their files, and pairs of")
    print("files of distinct pictures that match; ms/image: wall ms per api request (4 at a time), CPU ms per file")
    print("of the bench's hashing\n")
    variants.print_header()
    variants.report("api ingest", as_distances(as_linked | as_linked.T), PHASH_DISTANCE, files, per_request)
    variants.report("api related", as_distances(related | related.T), PHASH_DISTANCE, files, per_request)
    variants.report("api similar", similar_distances(similar, files), PHASH_DISTANCE, files, per_request)
    variants.report("bench grouped", groups, PHASH_DISTANCE, files, seconds)
    variants.report("bench direct", direct, PHASH_DISTANCE, files, seconds)
    compare(related, similar, groups, direct, files, names)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted: Paktum stopped, temporary folders removed") from None
