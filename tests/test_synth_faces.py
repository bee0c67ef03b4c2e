"""Synthetic CelebA: the official layout and formats, determinism, CelebA-like label statistics, and
attributes that are visible in the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentctl.data import synth_faces as faces_module
from latentctl.data.synth_faces import (
    CELEBA_ATTRIBUTES,
    RENDERED_ATTRIBUTES,
    image_name,
    sample_attributes,
    synth_faces,
)
from latentctl.errors import LatentctlError

N = 200


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 faces, seed 0, drawn once for the module."""
    root = tmp_path_factory.mktemp("celeba")
    synth_faces(root, N, seed=0, workers=1)
    return root


def read_attributes(root: Path) -> tuple[list[str], np.ndarray]:
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    rows = [line.split() for line in lines[2:]]
    return [row[0] for row in rows], np.array([row[1:] for row in rows], dtype=int)


def column(name: str) -> int:
    return CELEBA_ATTRIBUTES.index(name)


def region_means(root: Path, box: tuple[int, int, int, int]) -> np.ndarray:
    """Mean RGB of each face inside ``box`` (left, top, right, bottom), (N, 3)."""
    return np.stack([np.asarray(Image.open(root / "img_align_celeba" / image_name(index)).crop(box), dtype=float)
                     .mean(axis=(0, 1)) for index in range(N)])


def test_layout_is_celeba_official(faces: Path) -> None:
    images = sorted((faces / "img_align_celeba").iterdir())
    assert [path.name for path in images] == [f"{index:06d}.jpg" for index in range(1, N + 1)]
    for path in images[:5]:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (178, 218))


def test_attribute_list_has_celeba_header_and_values(faces: Path) -> None:
    lines = (faces / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == str(N)
    assert lines[1].split() == list(CELEBA_ATTRIBUTES)
    assert len(CELEBA_ATTRIBUTES) == 40 and CELEBA_ATTRIBUTES[0] == "5_o_Clock_Shadow"
    assert CELEBA_ATTRIBUTES[-1] == "Young"
    assert lines[2].startswith("000001.jpg ") and len(lines) == N + 2
    names, values = read_attributes(faces)
    assert names == [image_name(index) for index in range(N)]
    assert values.shape == (N, 40) and set(np.unique(values)) == {-1, 1}


def test_partition_covers_every_image_in_celeba_proportions(faces: Path) -> None:
    rows = [line.split() for line in (faces / "list_eval_partition.txt").read_text().splitlines()]
    assert [name for name, _ in rows] == [image_name(index) for index in range(N)]
    splits = [int(split) for _, split in rows]
    assert splits == sorted(splits)  # contiguous, like CelebA's
    assert [splits.count(code) for code in (0, 1, 2)] == [161, 19, 20]  # 162770 / 19867 / 19962 of 202599


def test_marker_lists_rendered_and_not_rendered_attributes(faces: Path) -> None:
    marker = json.loads((faces / "SYNTHETIC.json").read_text())
    assert marker["generator"] == "latentctl.data.synth_faces" and marker["seed"] == 0 and marker["n"] == N
    assert sorted(marker["rendered"] + marker["not_rendered"]) == sorted(CELEBA_ATTRIBUTES)
    assert set(marker["rendered"]) == set(RENDERED_ATTRIBUTES)
    assert {"Male", "Smiling", "Eyeglasses", "Blond_Hair", "Wearing_Lipstick", "Young"} <= set(marker["rendered"])


def test_written_attributes_match_sample_attributes(faces: Path) -> None:
    assert (read_attributes(faces)[1] == sample_attributes(N, seed=0)).all()


def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path: Path, faces: Path) -> None:
    synth_faces(tmp_path / "again", 20, seed=0, workers=1)
    synth_faces(tmp_path / "other", 20, seed=1, workers=1)
    again, other = tmp_path / "again", tmp_path / "other"
    first = faces / "img_align_celeba" / "000007.jpg"
    assert (again / "img_align_celeba" / "000007.jpg").read_bytes() == first.read_bytes()
    assert (again / "list_attr_celeba.txt").read_text().splitlines()[2:] == \
        (faces / "list_attr_celeba.txt").read_text().splitlines()[2:22]
    assert (other / "img_align_celeba" / "000007.jpg").read_bytes() != first.read_bytes()
    assert (other / "list_attr_celeba.txt").read_text() != (again / "list_attr_celeba.txt").read_text()


def test_worker_count_does_not_change_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faces_module, "CHUNK_SIZE", 8)  # 5 chunks from 40 faces
    synth_faces(tmp_path / "one", 40, seed=3, workers=1)
    synth_faces(tmp_path / "two", 40, seed=3, workers=2)
    for name in ("list_attr_celeba.txt", "img_align_celeba/000001.jpg", "img_align_celeba/000040.jpg"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_label_rates_and_correlations_are_celeba_like() -> None:
    has = sample_attributes(20000, seed=5) > 0
    male, young = has[:, column("Male")], has[:, column("Young")]
    for name, rate in {"Male": 0.42, "Smiling": 0.48, "Young": 0.77, "Eyeglasses": 0.065, "Wearing_Lipstick": 0.47,
                       "No_Beard": 0.83, "Blond_Hair": 0.15, "Black_Hair": 0.24, "Bald": 0.022}.items():
        assert abs(has[:, column(name)].mean() - rate) < 0.25 * rate + 0.01, name
    assert not (has[:, column("Mustache")] & ~male).any()
    assert not (has[:, column("Goatee")] & ~male).any()
    assert ((has[:, column("No_Beard")]) | male).all()  # women never have a beard
    assert (~male[has[:, column("Wearing_Lipstick")]]).mean() > 0.85
    assert (~young[has[:, column("Gray_Hair")]]).mean() > 0.75
    assert male[has[:, column("Bald")]].mean() > 0.85
    hair_colours = has[:, [column(name) for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]]
    assert hair_colours.sum(axis=1).max() == 1
    assert not hair_colours[has[:, column("Bald")]].any()


def test_blond_hair_is_lighter_than_black_hair(faces: Path) -> None:
    has = read_attributes(faces)[1] > 0
    visible = ~has[:, column("Wearing_Hat")] & ~has[:, column("Bald")]
    brightness = region_means(faces, (80, 74, 98, 84)).mean(axis=1)  # the top of the head
    blond = brightness[visible & has[:, column("Blond_Hair")]]
    black = brightness[visible & has[:, column("Black_Hair")]]
    assert len(blond) >= 5 and len(black) >= 5
    assert blond.mean() > black.mean() + 100


def test_eyeglasses_darken_the_bridge_between_the_eyes(faces: Path) -> None:
    has = read_attributes(faces)[1] > 0
    brightness = region_means(faces, (84, 103, 94, 113)).mean(axis=1)
    glasses, none = brightness[has[:, column("Eyeglasses")]], brightness[~has[:, column("Eyeglasses")]]
    assert len(glasses) >= 3
    assert glasses.mean() < none.mean() - 15


def test_lipstick_makes_the_lips_redder(faces: Path) -> None:
    has = read_attributes(faces)[1] > 0
    rgb = region_means(faces, (78, 146, 100, 160))
    redness = rgb[:, 0] - rgb[:, 1:].mean(axis=1)
    lipstick = has[:, column("Wearing_Lipstick")]
    assert redness[lipstick].mean() > redness[~lipstick].mean() + 10


def test_refuses_a_real_celeba_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(LatentctlError, match="already holds CelebA") as error:
        synth_faces(tmp_path, 5, workers=1)
    assert "--force" in error.value.hint
    assert not (tmp_path / "SYNTHETIC.json").exists()
    synth_faces(tmp_path, 5, workers=1, force=True)
    assert (tmp_path / "SYNTHETIC.json").is_file()


def test_rerun_with_fewer_faces_leaves_no_stale_images(tmp_path: Path) -> None:
    synth_faces(tmp_path, 12, workers=1)
    synth_faces(tmp_path, 5, workers=1)
    assert len(list((tmp_path / "img_align_celeba").iterdir())) == 5


def test_cli_synth_faces_json(cli, tmp_path: Path) -> None:
    result = cli("data", "synth", "faces", "--n", "30", "--seed", "2", "--root", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dataset"] == "faces" and document["n"] == 30 and document["seed"] == 2
    assert document["counts"] == {"train": 24, "val": 3, "test": 3}
    assert sorted(Path(path).name for path in document["files"]) == \
        ["SYNTHETIC.json", "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"]
    assert len(list((tmp_path / "img_align_celeba").iterdir())) == 30


def test_cli_synth_faces_prints_the_default_root(cli, isolated_home: Path) -> None:
    result = cli("data", "synth", "faces", "--n", "3")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(isolated_home / "data" / "celeba")
    assert (isolated_home / "data" / "celeba" / "img_align_celeba" / "000003.jpg").is_file()


@pytest.mark.parametrize("args", [("faces", "--n-train", "5"), ("faces", "--n-test", "5"), ("digits", "--n", "5")])
def test_cli_synth_rejects_options_of_the_other_set(cli, args: tuple[str, ...]) -> None:
    result = cli("data", "synth", *args)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_cli_synth_faces_refuses_real_celeba(cli, tmp_path: Path) -> None:
    (tmp_path / "list_attr_celeba.txt").write_text("202599\n")
    result = cli("data", "synth", "faces", "--n", "3", "--root", tmp_path)
    assert result.exit_code == 1
    assert "already holds CelebA" in result.stderr
