"""PAKTUM_PHASH_MODE through the whole hasher: real Debian images in, indexed pHashes compared with imagehash."""

import io
import itertools
import shutil
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from paktum_common.phash import hamming, is_degenerate
from paktum_common.search import parse_query
from paktum_common.settings import Settings
from paktum_hasher.phash import bits_to_int
from paktum_scraper.local import ImportReport, local_posts
from tests.integration.pipeline import Pipeline

REAL = Path(__file__).parent.parent / "fixtures" / "real"


@pytest.fixture(params=["fast", "exact"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    # A 40 px thumbnail makes the fast mode decode the larger real JPEGs at 1/8 scale.
    return settings.model_copy(update={"phash_mode": request.param, "thumbnail_size": 40})


def imagehash_of(path: Path) -> int:
    return bits_to_int(imagehash.phash(Image.open(path)).hash)


async def test_indexed_hashes_match_imagehash_as_the_mode_promises(tmp_path: Path, pipeline: Pipeline) -> None:
    folder = tmp_path / "in"
    shutil.copytree(REAL / "jpeg", folder)
    await pipeline.queue.publish_posts(local_posts(folder, ["real"], None, ImportReport()))
    await pipeline.drain()

    page = await pipeline.search.search(parse_query("real"), 50)
    assert page.total == len(list(folder.glob("*.jpg")))
    diffs = {}
    for hit in page.hits:
        source = folder / hit.SourceID
        assert (hit.Width, hit.Height) == Image.open(source).size
        diffs[hit.SourceID] = hamming(hit.PHash, imagehash_of(source))
        with Image.open(pipeline.store.thumbnail_path(hit.ID)) as thumb:
            assert max(thumb.size) == 40
    if pipeline.settings.phash_mode == "exact":
        assert set(diffs.values()) == {0}, diffs
    else:
        # Within the bound, and visibly the reduced decode: FreshFlower (1600x1203) comes out 2 bits off.
        assert max(diffs.values()) <= 4 and diffs["mate-FreshFlower.jpg"] > 0, diffs


@pytest.mark.filterwarnings("ignore:Palette images with Transparency:UserWarning")
async def test_transparent_line_art_does_not_become_one_variant_group(tmp_path: Path, pipeline: Pipeline) -> None:
    folder = tmp_path / "in"
    shutil.copytree(REAL / "lineart", folder)
    await pipeline.queue.publish_posts(local_posts(folder, ["art"], None, ImportReport()))
    await pipeline.drain()

    hits = (await pipeline.search.search(parse_query("art"), 50)).hits
    assert len(hits) == len(list(folder.glob("*.png")))
    assert all(imagehash_of(folder / hit.SourceID) == 0 for hit in hits)  # what imagehash alone would index
    assert not any(is_degenerate(hit.PHash) for hit in hits)
    assert min(hamming(a.PHash, b.PHash) for a, b in itertools.combinations(hits, 2)) > 10
    for hit in hits:  # the thumbnail shows the drawing on white, not a black square
        with Image.open(io.BytesIO(pipeline.store.thumbnail_path(hit.ID).read_bytes())) as thumb:
            assert thumb.convert("L").getextrema()[1] == 255
