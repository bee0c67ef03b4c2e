"""`latentctl data import folder`: your own images into the prepared cache, then trained on, sampled, walked and
steered; and torchvision's MNIST and CelebA layouts read where users have them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_FACE_FLAGS
from folder_images import ATTRIBUTES, make_folder

SKIPPED = {"broken.jpg": "unreadable", "tiny.png": "too small", "set3/copy-of-000.png": "duplicate of "
                                                                                         "set0/deep/img000.png"}
SMALL = ("--size", "32", "--gen-width", "8", "--disc-width", "8", "--latent-dim", "16", "--batch-size", "16")


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    return make_folder(folder)


def _import(cli, pictures: Path, *flags: str):
    return cli("data", "import", "folder", pictures, "--name", "pets", "--size", "32", *flags)


def test_import_lists_and_skips_the_corrupt_tiny_and_duplicate_files_and_keeps_the_rest(cli, pictures, isolated_home):
    result = _import(cli, pictures, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "data import" and document["imported"] == 60
    reasons = {item["file"]: item["reason"] for item in document["skipped"]}
    assert set(reasons) == set(SKIPPED)
    assert all(reasons[file].startswith(start) for file, start in SKIPPED.items())
    assert "skipped tiny.png: too small" in result.stderr
    assert document["root"] == str(isolated_home / "data" / "pets")


def test_an_imported_folder_is_the_prepared_cache_format_centre_cropped(cli, pictures, isolated_home):
    from latentctl.data.folders import load_folder

    assert _import(cli, pictures).exit_code == 0
    prepared = load_folder(isolated_home / "data" / "pets", 32)
    assert prepared.images.shape == (60, 3, 32, 32) and prepared.images.dtype == np.uint8
    assert prepared.attributes.shape == (60, 0) and prepared.attribute_names == []
    assert set(prepared.split.tolist()) <= {0, 1} and len(prepared.indices("val")) > 0
    assert prepared.meta["dataset"] == "folder" and prepared.meta["crop"] == 178
    row = prepared.filenames.index("set1/img001.jpg")
    with Image.open(pictures / "set1" / "img001.jpg") as original:  # the disc sits in the centre of the square
        centre = np.asarray(original.convert("RGB"))[original.height // 2, original.width // 2]
    assert np.abs(prepared.images[row, :, 16, 16].astype(int) - centre.astype(int)).max() < 40
    assert sorted(prepared.filenames) == prepared.filenames and "broken.jpg" not in prepared.filenames


def test_labels_become_attributes_and_minus_one_means_absent(cli, pictures, isolated_home):
    from latentctl.data.folders import load_folder

    result = _import(cli, pictures, "--labels", pictures.parent / "labels.csv", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["attributes"] == list(ATTRIBUTES)
    prepared = load_folder(isolated_home / "data" / "pets", 32)
    smiling = dict(zip(prepared.filenames, prepared.attributes[:, 0].tolist(), strict=True))
    assert smiling["set1/img001.jpg"] == 1 and smiling["set2/img002.webp"] == 0
    assert set(prepared.attributes[:, 1].tolist()) == {0, 1}  # Eyeglasses was -1/1


def test_a_label_that_is_not_binary_is_refused_naming_the_column(cli, pictures, tmp_path):
    labels = tmp_path / "classes.csv"
    labels.write_text("file,kind\nset1/img001.jpg,cat\n")
    result = _import(cli, pictures, "--labels", labels)
    assert result.exit_code == 1 and "'kind'" in result.stderr and "0/1" in result.stderr
    assert not (tmp_path / "home" / "data" / "pets").exists()


def test_data_check_reports_on_an_imported_folder_and_an_unknown_name_is_a_usage_error(cli, pictures):
    assert _import(cli, pictures, "--labels", pictures.parent / "labels.csv").exit_code == 0
    result = cli("data", "check", "pets", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] and document["images"] == 60 and document["sizes"] == [32]
    assert set(document["base_rates"]) == set(ATTRIBUTES) and len(document["skipped"]) == 3
    missing = cli("data", "check", "nopets")
    assert missing.exit_code == 2 and "data import folder" in missing.stderr


def test_import_refuses_to_replace_a_dataset_without_force_and_other_files_ever(cli, pictures, tmp_path):
    assert _import(cli, pictures).exit_code == 0
    again = _import(cli, pictures)
    assert again.exit_code == 1 and "--force" in again.stderr
    assert _import(cli, pictures, "--force").exit_code == 0
    celeba = tmp_path / "celeba-like"
    celeba.mkdir()
    (celeba / "list_attr_celeba.txt").write_text("1\n")
    refused = _import(cli, pictures, "--root", celeba, "--force")
    assert refused.exit_code == 1 and (celeba / "list_attr_celeba.txt").is_file()


def test_a_reserved_or_missing_name_is_a_usage_error(cli, pictures):
    assert cli("data", "import", "folder", pictures, "--name", "celeba").exit_code == 2
    assert cli("data", "import", "folder", pictures).exit_code == 2
    assert cli("data", "import", "celeba", pictures, "--name", "pets").exit_code == 2


def test_train_gan_on_an_unknown_name_says_how_to_import_one(cli, tmp_path):
    result = cli("train", "gan", "--data", "nopets", "--out", tmp_path / "m", *TINY_FACE_FLAGS)
    assert result.exit_code == 1 and "data import folder" in result.stderr


def test_a_folder_trains_resumes_samples_walks_and_is_steered_by_a_classifier_of_its_labels(cli, pictures, tmp_path):
    assert _import(cli, pictures, "--labels", pictures.parent / "labels.csv").exit_code == 0
    gan = tmp_path / "gan"
    trained = cli("train", "gan", "--data", "pets", "--out", gan, "--epochs", "1", *SMALL, "--json")
    assert trained.exit_code == 0, trained.stderr
    training = json.loads(trained.stdout)["training"]
    assert training["dataset"]["name"] == "pets" and training["dataset"]["images"] == 60  # all of it, val too
    assert training["options"]["augment"] is True  # a small set: on by default
    resumed = cli("train", "gan", "--resume", "--out", gan, "--epochs", "2", "--no-augment", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert "ignoring --augment" in resumed.stderr  # the run keeps its own data and augmentation
    assert json.loads(resumed.stdout)["training"]["options"]["augment"] is True
    assert cli("sample", "--model", gan, "--n", "4", tmp_path / "s.png").exit_code == 0
    assert cli("interpolate", "--model", gan, "--frames", "3", "--rows", "1", tmp_path / "i.png").exit_code == 0
    classifier = tmp_path / "classifier"
    result = cli("train", "classifier", "--data", "pets", "--out", classifier, "--epochs", "1", "--size", "32",
                 "--width", "8", "--batch-size", "16", "--json")
    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)["metrics"]["accuracy"]) == set(ATTRIBUTES)
    steered = cli("steer", "--model", gan, "--classifier", classifier, "--to", "Smiling", "--n", "1", "--frames",
                  "2", "--steps", "2", "--device", "cpu", tmp_path / "steer.png")
    assert steered.exit_code == 0, steered.stderr


def test_a_classifier_needs_labels(cli, pictures, tmp_path):
    assert _import(cli, pictures).exit_code == 0
    result = cli("train", "classifier", "--data", "pets", "--out", tmp_path / "c", "--size", "32")
    assert result.exit_code == 1 and "no labels" in result.stderr and "--labels" in result.stderr


def test_torchvisions_mnist_layout_is_read(tmp_path):
    from latentctl.data.mnist import check_mnist, load_mnist
    from latentctl.data.synth_digits import synth_digits

    made = tmp_path / "made"
    synth_digits(made, n_train=20, n_test=10)
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in made.glob("*-ubyte.gz"):
        shutil.copyfile(path, raw / path.name)
    images, labels = load_mnist(tmp_path / "root", "train")
    assert images.shape == (20, 28, 28) and labels.shape == (20,)
    assert all(file.present for file in check_mnist(tmp_path / "root").files)


def test_torchvisions_celeba_layout_is_read(cli, tmp_path):
    from latentctl.data.celeba import check_celeba, load_celeba
    from latentctl.data.synth_faces import synth_faces

    root = tmp_path / "root"
    synth_faces(root / "celeba", 40, seed=1, workers=1)
    (root / "celeba" / "SYNTHETIC.json").unlink()  # torchvision's folder holds the official files only
    assert len(load_celeba(root)) == 40 and check_celeba(root).ok
    result = cli("data", "prepare", "celeba", "--root", root, "--size", "32", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    assert (root / "prepared" / "32px-crop178" / "images.npy").is_file()


def test_without_celeba_the_hint_names_the_download_first(cli, tmp_path):
    result = cli("train", "gan", "--data-root", tmp_path / "nothing", "--out", tmp_path / "m")
    assert result.exit_code == 1
    hint = result.stderr[result.stderr.index("hint:"):]
    assert hint.index("latentctl data download celeba") < hint.index("latentctl data import celeba")


def test_a_photo_stored_sideways_is_imported_upright(cli, tmp_path, isolated_home):
    from PIL import ImageOps

    from latentctl.data.folders import load_folder
    from latentctl.data.prepare import crop_and_resize

    folder = tmp_path / "phone"
    folder.mkdir()
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :30] = (255, 0, 0)  # a red band on the left as stored: on top once upright
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show it rotated 90 degrees clockwise
    Image.fromarray(pixels).save(folder / "photo.png", exif=exif)
    assert cli("data", "import", "folder", folder, "--name", "phone", "--size", "32").exit_code == 0
    stored = load_folder(isolated_home / "data" / "phone", 32).images[0]
    with Image.open(folder / "photo.png") as photo:
        upright = np.asarray(crop_and_resize(ImageOps.exif_transpose(photo), 32)).transpose(2, 0, 1)
        sideways = np.asarray(crop_and_resize(photo, 32)).transpose(2, 0, 1)
    assert np.array_equal(stored, upright) and not np.array_equal(stored, sideways)


def test_steer_takes_the_label_names_of_an_imported_folder(cli, pictures, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(labels.read_text().replace("file,Smiling,Eyeglasses", "file,Bright_Disc,Wide", 1))
    assert _import(cli, pictures, "--labels", labels).exit_code == 0
    gan, classifier = tmp_path / "gan", tmp_path / "classifier"
    assert cli("train", "gan", "--data", "pets", "--out", gan, "--epochs", "1", *SMALL).exit_code == 0
    assert cli("train", "classifier", "--data", "pets", "--out", classifier, "--epochs", "1", "--size", "32",
               "--width", "8", "--batch-size", "16").exit_code == 0
    steer = ("steer", "--model", gan, "--classifier", classifier, "--n", "1", "--frames", "2", "--steps", "2",
             "--device", "cpu")
    result = cli(*steer, "--to", "bright_disc", "--json", tmp_path / "steer.png")
    assert result.exit_code == 0, result.stderr
    assert "Bright_Disc" in json.loads(result.stdout)["faces"][0]["frames"][-1]["targets"]
    misspelt = cli(*steer, "--to", "Brite_Disc", tmp_path / "x.png")  # judged by the classifier's own labels
    assert misspelt.exit_code == 2 and "did you mean Bright_Disc" in " ".join(misspelt.stderr.replace("│", " ").split())
