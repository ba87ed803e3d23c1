"""`paktum reindex` through the command line: SQLite to Meilisearch (the fake on loopback) and back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from paktum_cli.embedded_redis import free_port
from paktum_cli.main import main
from paktum_common.search import SearchQuery
from paktum_common.search.sqlite import SqliteSearch
from tests.documents import synthetic
from tests.fakemeili import FakeMeili


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0)


def test_sqlite_to_meilisearch_and_back(
    tmp_path: Path, fake: FakeMeili, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAKTUM_SEARCH_URL", raising=False)
    docs = [synthetic(n, ["t", f"n{n}"]) for n in range(7)]

    async def fill() -> None:
        source = SqliteSearch(tmp_path / "laptop.sqlite3")
        await source.add_documents(docs)
        await source.close()

    asyncio.run(fill())  # main() runs its own event loop, so this test runs none of its own

    laptop = f"sqlite:///{tmp_path / 'laptop.sqlite3'}"
    assert run(["--data-dir", str(tmp_path), "reindex", "--from", laptop, "--to", fake.url, "--batch", "3"]) == 0
    err = capsys.readouterr().err
    assert "paktum reindex: 3/7 documents (42%)" in err and "paktum reindex: 7/7 documents (100%)" in err
    assert "copied 7 documents" in err and "the target now holds 7" in err
    stored = fake.indexes["images"].documents
    assert sorted(stored) == [d.ID for d in docs]
    assert stored[docs[1].ID]["PHash"] == "fffffffffffffffe" and stored[docs[1].ID]["AddedTs"] == 1_700_000_001
    assert [len(b) for b in fake.bodies("POST", "/indexes/images/documents")] == [3, 3, 1]

    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    assert run(["--data-dir", str(tmp_path), "reindex", "--from", fake.url, "--to", back, "--batch", "5"]) == 0

    async def check() -> None:
        copy = SqliteSearch(tmp_path / "back.sqlite3")
        assert await copy.get_documents([d.ID for d in docs]) == {d.ID: d for d in docs}
        assert (await copy.search(SearchQuery(all_tags=("n3",)), 5)).hits == [docs[3]]
        await copy.close()

    asyncio.run(check())


def test_an_unreachable_target_fails_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    laptop = f"sqlite:///{tmp_path / 'laptop.sqlite3'}"
    code = run(["--data-dir", str(tmp_path), "reindex", "--from", laptop, "--to", f"http://127.0.0.1:{port}"])
    assert code == 1
    assert f"paktum reindex: meilisearch at http://127.0.0.1:{port} is unreachable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "sqlite:///a", "--to", "sqlite:///a/"], "name the same index"),
        (["--from", "sqlite:///a", "--to", "sqlite:///b", "--batch", "0"], "--batch must be at least 1"),
        (["--from", "sqlite:///a", "--to", "ftp://b"], "unsupported PAKTUM_SEARCH_URL 'ftp://b'"),
    ],
    ids=["same", "batch", "scheme"],
)
def test_bad_arguments_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = ["--data-dir", str(tmp_path), "reindex", *[a.replace("///", f"///{tmp_path}/") for a in args]]
    assert run(argv) in (1, 2)
    assert message in capsys.readouterr().err
