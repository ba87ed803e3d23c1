"""What only the SQLite backend promises; what every backend promises is in test_search_contract.py."""

import asyncio
import multiprocessing
from pathlib import Path

from paktum_common.search import SearchQuery
from paktum_common.search.sqlite import SqliteSearch
from tests.integration.test_search_contract import doc


def _writer(path: str, start: int) -> None:
    async def write() -> None:
        search = SqliteSearch(path)
        for n in range(start, start + 50):
            await search.add_documents([doc(n, "shared")])
        await search.close()

    asyncio.run(write())


async def test_several_processes_write_one_file(tmp_path: Path) -> None:
    """The hashers and the api share one file (WAL): concurrent writers lose nothing."""
    path = str(tmp_path / "shared.sqlite3")
    await SqliteSearch(path).close()  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start)) for start in (0, 1000, 2000)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    search = SqliteSearch(path)
    assert (await search.search(SearchQuery(all_tags=("shared",)), 1)).total == 150
    await search.close()
