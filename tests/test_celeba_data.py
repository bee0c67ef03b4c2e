"""CelebA on disk: both layouts read alike, the integrity check, importing folders and zips safely."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentctl import paths
from latentctl.data.celeba import CELEBA_ATTRIBUTES, IMAGE_DIR, check_celeba, load_celeba
from latentctl.errors import LatentctlError

N = 10
SPLIT = np.array([0] * 6 + [1] * 2 + [2] * 2, dtype=np.int8)


def names(n: int = N) -> list[str]:
    return [f"{index:06d}.jpg" for index in range(1, n + 1)]


def attributes(n: int = N) -> np.ndarray:
    """(n, 40) 0/1 attributes, different per row and per column."""
    return np.random.default_rng(0).integers(0, 2, (n, len(CELEBA_ATTRIBUTES)), dtype=np.uint8)


def write_celeba(root: Path, layout: str = "official") -> Path:
    """Write a tiny CelebA (N solid-colour 178x218 JPEGs and the annotations) in ``layout``; return root."""
    image_dir = root / IMAGE_DIR / IMAGE_DIR if layout == "kaggle" else root / IMAGE_DIR
    image_dir.mkdir(parents=True)
    for index, name in enumerate(names()):
        Image.new("RGB", (178, 218), (index * 20, 100, 200)).save(image_dir / name, quality=90)
    signs = attributes().astype(int) * 2 - 1
    rows_of = list(zip(names(), signs.tolist(), strict=True))
    splits_of = list(zip(names(), SPLIT.tolist(), strict=True))
    if layout == "official":  # as published: a count, the names, then right-aligned -1/1 columns
        rows = [f"{name} " + " ".join(f"{value:2d}" for value in row) for name, row in rows_of]
        (root / "list_attr_celeba.txt").write_text(f"{N}\n{' '.join(CELEBA_ATTRIBUTES)} \n" + "\n".join(rows) + "\n")
        (root / "list_eval_partition.txt").write_text("".join(f"{n} {s}\n" for n, s in splits_of))
    else:
        rows = [",".join([name, *map(str, row)]) for name, row in rows_of]
        (root / "list_attr_celeba.csv").write_text(",".join(["image_id", *CELEBA_ATTRIBUTES]) + "\n"
                                                   + "\n".join(rows) + "\n")
        (root / "list_eval_partition.csv").write_text("image_id,partition\n"
                                                      + "".join(f"{n},{s}\n" for n, s in splits_of))
    return root


def zip_folder(folder: Path, archive: Path, only: str | None = None) -> Path:
    """Zip ``folder`` (or just its subfolder ``only``) with paths relative to ``folder``."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((folder / only if only else folder).rglob("*")):
            zipped.write(path, path.relative_to(folder).as_posix())
    return archive


@pytest.fixture(params=["official", "kaggle"])
def celeba(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return write_celeba(tmp_path / request.param, request.param)


# --------------------------------------------------------------------------------------------- loading

def test_official_and_kaggle_layouts_load_to_the_same_data(tmp_path: Path) -> None:
    official = load_celeba(write_celeba(tmp_path / "official", "official"))
    kaggle = load_celeba(write_celeba(tmp_path / "kaggle", "kaggle"))
    assert (official.layout, kaggle.layout) == ("official", "kaggle")
    assert official.filenames == kaggle.filenames == names()
    np.testing.assert_array_equal(official.attributes, kaggle.attributes)
    np.testing.assert_array_equal(official.split, kaggle.split)
    assert kaggle.image_path(0).is_file() and official.image_path(0).is_file()


def test_minus_one_and_one_become_zero_and_one(celeba: Path) -> None:
    loaded = load_celeba(celeba)
    assert loaded.attributes.dtype == np.uint8 and loaded.attributes.shape == (N, 40)
    np.testing.assert_array_equal(loaded.attributes, attributes())
    assert loaded.split.dtype == np.int8
    assert loaded.split_counts() == {"train": 6, "val": 2, "test": 2}


def test_partition_order_does_not_matter(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba")
    lines = (root / "list_eval_partition.txt").read_text().splitlines()
    (root / "list_eval_partition.txt").write_text("\n".join(reversed(lines)) + "\n")
    np.testing.assert_array_equal(load_celeba(root).split, SPLIT)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: "<!DOCTYPE html><html><body>Quota exceeded</body></html>", "HTML page"),
    (lambda text: text.replace("Young", "Old"), "attribute 40 of its header is 'Old'"),
    (lambda text: text.replace(" 1", " 2", 1), "attributes are -1 or 1"),
    (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", "says 10 images but it holds 9 rows"),
])
def test_a_bad_attribute_file_is_a_one_line_error(tmp_path: Path, edit, message: str) -> None:
    root = write_celeba(tmp_path / "celeba")
    path = root / "list_attr_celeba.txt"
    path.write_text(edit(path.read_text()))
    with pytest.raises(LatentctlError, match=message) as raised:
        load_celeba(root)
    assert raised.value.hint and "\n" not in raised.value.message


def test_a_partition_that_covers_other_images_is_an_error(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba", "kaggle")
    path = root / "list_attr_celeba.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")  # drop the last image's row
    with pytest.raises(LatentctlError, match="list_eval_partition.csv lists 000010.jpg, missing from"):
        load_celeba(root)


# ------------------------------------------------------------------------------------------- the check

def test_check_passes_on_a_good_set(cli, celeba: Path) -> None:
    result = cli("data", "check", "celeba", "--root", celeba, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["layout"] == celeba.name
    assert report["counts"]["images_on_disk"] == report["counts"]["attribute_rows"] == N
    assert report["counts"]["splits"] == {"train": 6, "val": 2, "test": 2}
    assert report["official_counts"]["expected"] == "differs"
    assert report["base_rates"]["Young"] == pytest.approx(attributes()[:, -1].mean())
    assert "most common attributes" in result.stderr


def test_check_reports_official_annotation_md5s_unless_synthetic(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba")
    assert check_celeba(root).annotation_md5["list_attr_celeba.txt"]["official"] is False
    (root / "SYNTHETIC.json").write_text('{"seed": 3}')
    report = check_celeba(root)
    assert report.annotation_md5 == {} and report.expected == "synthetic" and report.ok


def test_check_fails_listing_an_image_without_a_row(cli, celeba: Path) -> None:
    image_dir = load_celeba(celeba).image_dir
    shutil.copy(image_dir / "000001.jpg", image_dir / "999999.jpg")
    result = cli("data", "check", "celeba", "--root", celeba)
    assert result.exit_code == 1
    assert "1 images have no attribute row: 999999.jpg" in result.stderr
    report = check_celeba(celeba)
    assert report.images_without_row == ["999999.jpg"] and report.images_without_row_count == 1


def test_check_fails_listing_a_row_without_an_image(cli, celeba: Path) -> None:
    (load_celeba(celeba).image_dir / "000004.jpg").unlink()
    result = cli("data", "check", "celeba", "--root", celeba, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["rows_without_image"] == ["000004.jpg"]
    assert "1 attribute rows have no image: 000004.jpg" in result.stderr


@pytest.mark.parametrize(("name", "content", "message"), [
    ("list_attr_celeba.txt", "<html><head><title>Google Drive - Quota exceeded</title>", "HTML page"),
    ("list_attr_celeba.txt", None, "says 10 images but it holds 9 rows"),
    ("list_eval_partition.txt", "000001.jpg 0\n", "has rows for 000002.jpg"),
], ids=["html-quota-page", "missing-attribute-row", "short-partition"])
def test_check_fails_on_bad_annotations(cli, tmp_path: Path, name: str, content: str | None, message: str) -> None:
    root = write_celeba(tmp_path / "celeba")
    path = root / name
    path.write_text(content if content is not None else "\n".join(path.read_text().splitlines()[:-1]) + "\n")
    result = cli("data", "check", "celeba", "--root", root)
    assert result.exit_code == 1
    assert "error: celeba in" in result.stderr and message in result.stderr
    assert "Traceback" not in result.output


def test_check_fails_on_a_wrong_kaggle_header(cli, tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba", "kaggle")
    path = root / "list_attr_celeba.csv"
    path.write_text(path.read_text().replace("Male", "Female", 1))
    result = cli("data", "check", "celeba", "--root", root)
    assert result.exit_code == 1 and "attribute 21 of its header is 'Female'" in result.stderr


def test_check_of_an_empty_folder_says_to_import(cli, tmp_path: Path) -> None:
    result = cli("data", "check", "celeba", "--root", tmp_path)
    assert result.exit_code == 1 and "data import celeba" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_deep_check_lists_a_truncated_jpeg(cli, tmp_path: Path, workers: int) -> None:
    root = write_celeba(tmp_path / "celeba")
    path = root / IMAGE_DIR / "000003.jpg"
    path.write_bytes(path.read_bytes()[:300])
    assert check_celeba(root).ok  # a shallow check does not open images
    report = check_celeba(root, deep=True, workers=workers)
    assert [item["name"] for item in report.unreadable] == ["000003.jpg"] and report.decoded == N
    result = cli("data", "check", "celeba", "--root", root, "--deep")
    assert result.exit_code == 1 and "1 images cannot be decoded: 000003.jpg" in result.stderr


# ------------------------------------------------------------------------------------------- importing

def official_folder(tmp_path: Path) -> Path:
    return write_celeba(tmp_path / "downloads" / "celeba", "official")


def official_zip(tmp_path: Path) -> Path:
    """img_align_celeba.zip with the annotation txt files beside it, as the CelebA page hands them out."""
    folder = official_folder(tmp_path)
    archive = zip_folder(folder, tmp_path / "downloads" / "img_align_celeba.zip", only=IMAGE_DIR)
    for name in ("list_attr_celeba.txt", "list_eval_partition.txt"):
        shutil.move(folder / name, archive.parent / name)
    shutil.rmtree(folder)
    return archive


def kaggle_folder(tmp_path: Path) -> Path:
    return write_celeba(tmp_path / "downloads" / "archive", "kaggle")


def kaggle_zip(tmp_path: Path) -> Path:
    folder = kaggle_folder(tmp_path)
    return zip_folder(folder, tmp_path / "downloads" / "archive.zip")


@pytest.mark.parametrize("make_source", [official_folder, official_zip, kaggle_folder, kaggle_zip],
                         ids=lambda make: make.__name__)
def test_import_installs_the_official_layout(cli, tmp_path: Path, make_source) -> None:
    source = make_source(tmp_path)
    result = cli("data", "import", "celeba", source, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    root = paths.data_dir("celeba")
    assert document["root"] == str(root) and document["images"] == N and document["dataset"] == "celeba"
    assert document["layout"] == ("kaggle" if "kaggle" in make_source.__name__ else "official")
    loaded = load_celeba(root)
    assert loaded.layout == "official" and loaded.filenames == names()
    np.testing.assert_array_equal(loaded.attributes, attributes())
    np.testing.assert_array_equal(loaded.split, SPLIT)
    assert sorted(path.name for path in root.iterdir()) == [IMAGE_DIR, "list_attr_celeba.txt",
                                                           "list_eval_partition.txt"]
    assert source.exists()  # the user's copy is left alone
    assert cli("data", "check", "celeba").exit_code == 0


def test_import_prints_the_root_without_json(cli, tmp_path: Path) -> None:
    result = cli("data", "import", "celeba", official_folder(tmp_path), "--root", tmp_path / "out")
    assert result.exit_code == 0 and result.stdout.strip() == str(tmp_path / "out")


def test_import_refuses_to_replace_without_force(cli, tmp_path: Path) -> None:
    source = official_folder(tmp_path)
    assert cli("data", "import", "celeba", source).exit_code == 0
    result = cli("data", "import", "celeba", source)
    assert result.exit_code == 1 and "already holds CelebA" in result.stderr
    assert cli("data", "import", "celeba", source, "--force").exit_code == 0
    assert load_celeba(paths.data_dir("celeba")).filenames == names()


def test_import_refuses_a_zip_member_that_escapes(cli, tmp_path: Path) -> None:
    archive = kaggle_zip(tmp_path)
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("../evil.txt", "gotcha")
    root = tmp_path / "work" / "celeba"
    result = cli("data", "import", "celeba", archive, "--root", root)
    assert result.exit_code == 1 and "'../evil.txt'" in result.stderr and "nothing was extracted" in result.stderr
    assert not (tmp_path / "work" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not root.exists()


def test_import_refuses_a_zip_symlink(tmp_path: Path) -> None:
    from latentctl.data.celeba import import_celeba

    archive = kaggle_zip(tmp_path)
    with zipfile.ZipFile(archive, "a") as zipped:
        link = zipfile.ZipInfo("img_align_celeba/link.jpg")
        link.external_attr = 0o120777 << 16
        zipped.writestr(link, "/etc/passwd")
    with pytest.raises(LatentctlError, match="link.jpg"):
        import_celeba(archive, tmp_path / "root")


def test_a_failed_import_leaves_nothing_in_root(cli, tmp_path: Path) -> None:
    source = official_folder(tmp_path)
    (source / "list_attr_celeba.txt").write_text("<!DOCTYPE html><html>quota exceeded</html>")
    root = tmp_path / "root"
    result = cli("data", "import", "celeba", source, "--root", root)
    assert result.exit_code == 1 and "HTML page" in result.stderr
    assert list(root.iterdir()) == []


def test_import_help_shows_examples(cli) -> None:
    assert "latentctl data import celeba" in cli("data", "import", "--help").output.split("Examples")[1]
