"""The prepared CelebA cache: contents, no-op when current, rebuilt when the source changes, failures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentctl.data.celeba import load_celeba
from latentctl.data.prepare import (
    cache_dir,
    crop_and_resize,
    crop_box,
    ensure_prepared,
    load_prepared,
    prepare_celeba,
)
from latentctl.data.synth_faces import synth_faces
from latentctl.errors import LatentctlError


@pytest.fixture(scope="module")
def faces_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    synth_faces(root, 300, seed=3, workers=1)
    return root


@pytest.fixture
def faces(faces_source: Path, tmp_path: Path) -> Path:
    """A private copy of a tiny synthetic CelebA, free to damage."""
    root = tmp_path / "celeba"
    shutil.copytree(faces_source, root)
    return root


def test_cache_holds_every_image_cropped_and_resized_with_attributes_and_split(faces: Path) -> None:
    result = prepare_celeba(faces, size=32, workers=2)
    prepared = load_prepared(faces, size=32)
    celeba = load_celeba(faces)
    assert result.built and result.images == 300 and result.path == cache_dir(faces, 32)
    assert prepared.images.shape == (300, 3, 32, 32) and prepared.images.dtype == np.uint8
    assert np.array_equal(prepared.attributes, celeba.attributes)
    assert np.array_equal(prepared.split, celeba.split)
    assert prepared.filenames == celeba.filenames
    for index in (0, 157, 299):
        with Image.open(celeba.image_path(index)) as image:
            expected = np.asarray(crop_and_resize(image, 32)).transpose(2, 0, 1)
        assert np.array_equal(prepared.images[index], expected)


def test_parallel_and_serial_builds_are_identical(faces: Path) -> None:
    prepare_celeba(faces, size=32, workers=2)
    parallel = np.array(load_prepared(faces, size=32).images)
    prepare_celeba(faces, size=32, workers=1, force=True)
    assert np.array_equal(parallel, load_prepared(faces, size=32).images)


def test_rerun_is_a_no_op_while_the_source_is_unchanged(faces: Path) -> None:
    prepare_celeba(faces, size=32, workers=1)
    before = os.stat(cache_dir(faces, 32) / "images.npy").st_mtime_ns
    again = prepare_celeba(faces, size=32, workers=1)
    assert not again.built and again.reason == "current"
    assert os.stat(cache_dir(faces, 32) / "images.npy").st_mtime_ns == before


def test_a_changed_image_invalidates_the_cache(faces: Path) -> None:
    prepare_celeba(faces, size=32, workers=1)
    first = faces / "img_align_celeba" / "000001.jpg"
    Image.new("RGB", (178, 218), (255, 0, 0)).save(first, quality=95)
    result = prepare_celeba(faces, size=32, workers=1)
    assert result.built and result.reason == "the dataset changed since it was made"
    assert load_prepared(faces, size=32).images[0].mean(axis=(1, 2)).round().tolist() == [254.0, 0.0, 0.0]


def test_another_size_or_crop_is_another_cache(faces: Path) -> None:
    prepare_celeba(faces, size=32, workers=1)
    result = prepare_celeba(faces, size=16, crop=120, workers=1)
    assert result.built and result.path.name == "16px-crop120"
    assert (cache_dir(faces, 32) / "meta.json").is_file()


def test_an_undecodable_image_fails_naming_it_and_keeps_the_previous_cache(faces: Path) -> None:
    prepare_celeba(faces, size=32, workers=1)
    (faces / "img_align_celeba" / "000007.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(LatentctlError, match="000007.jpg"):
        prepare_celeba(faces, size=32, workers=2)
    assert load_prepared(faces, size=32).images.shape[0] == 300  # the old cache is intact
    assert [path.name for path in (faces / "prepared").iterdir()] == ["32px-crop178"]  # no staging left


def test_load_without_a_cache_says_how_to_make_one(faces: Path) -> None:
    with pytest.raises(LatentctlError) as error:
        load_prepared(faces, size=32)
    assert "latentctl data prepare celeba --size 32" in str(error.value.hint)


def test_damaged_cache_is_reported_and_rebuilt_on_demand(faces: Path) -> None:
    prepare_celeba(faces, size=32, workers=1)
    np.save(cache_dir(faces, 32) / "split.npy", np.zeros(5, dtype=np.int8))
    with pytest.raises(LatentctlError, match="damaged"):
        load_prepared(faces, size=32)
    (cache_dir(faces, 32) / "meta.json").write_text("{not json")
    started = []
    prepared = ensure_prepared(faces, size=32, on_start=lambda reason, count: started.append((reason, count)))
    assert started == [("its meta.json is damaged", 300)]
    assert prepared.split.shape == (300,)


def test_select_gives_the_official_split_as_a_view(faces: Path) -> None:
    prepared = ensure_prepared(faces, size=32)
    images, attributes = prepared.select("train")
    counts = load_celeba(faces).split_counts()
    assert images.shape[0] == attributes.shape[0] == counts["train"]
    assert isinstance(images, np.memmap)  # contiguous rows: no copy of the whole split
    assert prepared.select("val")[0].shape[0] == counts["val"]
    assert prepared.fingerprint()["synthetic"] is True
    assert "Attractive" in prepared.not_rendered and "Male" not in prepared.not_rendered


def test_crop_box_scales_with_the_image_width() -> None:
    assert crop_box(178, 218) == (0, 20, 178, 198)
    assert crop_box(178, 218, crop=108) == (35, 55, 143, 163)
    assert crop_box(356, 436, crop=108) == (70, 110, 286, 326)  # twice as large: twice the crop
    assert crop_box(100, 60) == (20, 0, 80, 60)  # never larger than the image


def test_cli_prepare_prints_the_cache_then_does_nothing_the_second_time(cli, faces: Path) -> None:
    first = cli("data", "prepare", "celeba", "--root", faces, "--size", "32", "--workers", "1")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.strip() == str(cache_dir(faces, 32))
    assert "images/s" in first.stderr
    second = cli("data", "prepare", "celeba", "--root", faces, "--size", "32", "--json")
    document = json.loads(second.stdout)
    assert second.exit_code == 0 and document["built"] is False and document["images"] == 300
    assert "nothing to do" in second.stderr


def test_cli_prepare_without_celeba_fails_in_one_line(cli, tmp_path: Path) -> None:
    result = cli("data", "prepare", "celeba", "--root", tmp_path / "empty")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: CelebA is not in")
    assert "Traceback" not in result.stderr
