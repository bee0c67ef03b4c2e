"""`latentctl classify`: attribute probabilities of image files, as a table or JSON, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentctl.data.celeba import CELEBA_ATTRIBUTES, IMAGE_DIR
from latentctl.data.prepare import ensure_prepared
from latentctl.data.synth_faces import synth_faces
from latentctl.eval.reading import predict_probabilities
from latentctl.images import to_unit_range
from latentctl.models.classifier import ClassifierConfig
from latentctl.store import load_model
from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer


@pytest.fixture(scope="module")
def faces_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    synth_faces(root, 60, seed=4, workers=1)
    return root


@pytest.fixture(scope="module")
def classifier(faces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier trained for one epoch: the right format, weak predictions."""
    out = tmp_path_factory.mktemp("models") / "classifier"
    data = AttributeData.from_prepared(ensure_prepared(faces_root, 32, 160))
    ClassifierTrainer(ClassifierConfig(image_size=32, width=8), ClassifierOptions(epochs=1, batch_size=16), data,
                      out, torch.device("cpu")).train()
    return out


def face(faces_root: Path, index: int) -> Path:
    return faces_root / IMAGE_DIR / f"{index + 1:06d}.jpg"


def test_json_gives_every_attribute_of_every_image(cli, faces_root, classifier):
    result = cli("classify", face(faces_root, 0), face(faces_root, 1), "--classifier", classifier, "--json")
    assert result.exit_code == 0, result.stderr
    images = json.loads(result.stdout)["images"]
    assert [image["path"] for image in images] == [str(face(faces_root, 0)), str(face(faces_root, 1))]
    for image in images:
        assert list(image["probabilities"]) == list(CELEBA_ATTRIBUTES)
        assert all(0 <= p <= 1 for p in image["probabilities"].values())


def test_images_are_prepared_exactly_as_the_training_images_were(cli, faces_root, classifier):
    prepared = ensure_prepared(faces_root, 32, 160)  # the classifier was trained on 160-pixel crops
    model, _ = load_model(classifier, "classifier")
    expected = predict_probabilities(model, to_unit_range(torch.from_numpy(prepared.images[:3])))
    result = cli("classify", *(face(faces_root, i) for i in range(3)), "--classifier", classifier, "--json")
    found = [list(image["probabilities"].values()) for image in json.loads(result.stdout)["images"]]
    assert torch.tensor(found) == pytest.approx(expected, abs=1e-4)


def test_classify_is_the_classify_command_as_one_call(cli, faces_root, classifier):
    from latentctl.eval.reading import classify

    paths = [face(faces_root, 0), face(faces_root, 1)]
    result = cli("classify", *paths, "--classifier", classifier, "--top", "2", "--json")
    read = classify(paths, classifier=classifier, top=2)
    assert read.probabilities.shape == (2, len(CELEBA_ATTRIBUTES))
    assert {"command": "classify", **read.to_json()} == json.loads(result.stdout)


def test_the_table_has_an_attribute_per_row_and_an_image_per_column(cli, faces_root, classifier):
    result = cli("classify", face(faces_root, 0), face(faces_root, 1), "--classifier", classifier)
    assert result.exit_code == 0 and result.stdout == ""
    assert "000001.jpg" in result.stderr and "000002.jpg" in result.stderr
    assert all(name in result.stderr for name in CELEBA_ATTRIBUTES)


def test_top_keeps_each_images_most_likely_attributes(cli, faces_root, classifier):
    result = cli("classify", face(faces_root, 0), "--classifier", classifier, "--top", "3", "--json")
    image = json.loads(result.stdout)["images"][0]
    ranked = sorted(image["probabilities"], key=image["probabilities"].get, reverse=True)
    assert image["top"] == ranked[:3]
    table = cli("classify", face(faces_root, 0), "--classifier", classifier, "--top", "3").stderr
    assert sum(name in table.split() for name in CELEBA_ATTRIBUTES) == 3


def test_images_of_any_size_and_format_are_accepted(cli, faces_root, classifier, tmp_path):
    big = tmp_path / "big.png"
    with Image.open(face(faces_root, 0)) as picture:
        picture.resize((356, 436)).convert("RGBA").save(big)
    result = cli("classify", big, "--classifier", classifier, "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["images"][0]["probabilities"]) == 40


def test_a_missing_image_is_one_line_and_exit_1(cli, classifier, tmp_path):
    result = cli("classify", tmp_path / "nope.jpg", "--classifier", classifier)
    assert result.exit_code == 1 and "nope.jpg does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_a_file_that_is_not_an_image_is_one_line_and_exit_1(cli, classifier, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    result = cli("classify", notes, "--classifier", classifier)
    assert result.exit_code == 1 and "cannot read" in result.stderr and "notes.jpg" in result.stderr


def test_a_generator_given_as_the_classifier_is_refused(cli, faces_root, tiny_model):
    result = cli("classify", face(faces_root, 0), "--classifier", tiny_model)
    assert result.exit_code == 1
    assert "holds a conditional GAN (cgan), this command needs an attribute classifier" in result.stderr
    assert "pass --classifier" in result.stderr


def test_without_a_classifier_it_says_how_to_train_one(cli, faces_root):
    result = cli("classify", face(faces_root, 0))
    assert result.exit_code == 1
    assert "no model at" in result.stderr and "latentctl train classifier" in result.stderr


def test_attributes_shows_the_training_base_rates_of_a_trained_classifier(cli, faces_root, classifier):
    from latentctl.data.celeba import load_celeba

    result = cli("attributes", "--classifier", classifier, "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["attributes"]}
    data = load_celeba(faces_root)
    train = data.attributes[data.split == 0]
    male = CELEBA_ATTRIBUTES.index("Male")
    assert rows["Male"]["base_rate"] == pytest.approx(train[:, male].mean(), abs=1e-4)
    assert 0 <= rows["Male"]["balanced_accuracy"] <= 1
