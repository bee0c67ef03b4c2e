"""`latentctl eval separability`: StyleGAN's linear separability, checked on latents with known answers and run
through the CLI on tiny models."""

from __future__ import annotations

import json

import pytest
import torch

from latentctl.eval.separability import conditional_entropy
from latentctl.latent.directions import linear_svm


def svm_sides(inputs: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The side (0/1) of the fitted SVM's plane each input lies on."""
    weights, bias = linear_svm(inputs, truth)
    return (inputs.double() @ weights + bias > 0).long()


@pytest.fixture(scope="module")
def latents() -> torch.Tensor:
    return torch.randn(2000, 3, generator=torch.Generator().manual_seed(0))


def test_an_attribute_on_one_side_of_a_plane_is_separable(latents):
    truth = (latents @ torch.tensor([1.0, -2.0, 0.5]) > 0.3).long()
    predicted = svm_sides(latents, truth)
    assert (predicted == truth).float().mean() > 0.99
    assert conditional_entropy(predicted, truth) < 0.1


def test_an_attribute_no_plane_can_cut_leaves_about_a_bit(latents):
    truth = ((latents[:, 0] > 0) ^ (latents[:, 1] > 0)).long()  # XOR: two quadrants each
    assert conditional_entropy(svm_sides(latents, truth), truth) > 0.9


def test_conditional_entropy_is_zero_for_a_perfect_split_and_one_bit_for_a_coin():
    truth = torch.tensor([0, 1] * 50)
    assert conditional_entropy(truth, truth) == 0
    assert conditional_entropy(torch.zeros(100, dtype=torch.long), truth) == pytest.approx(1.0)


def test_eval_separability_scores_each_attribute_of_a_face_gan(cli, face_model, classifier_32):
    result = cli("eval", "separability", "--model", face_model, "--classifier", classifier_32, "--samples", "300",
                 "--attribute", "Male", "--attribute", "Smiling", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    scored = {entry["name"]: entry for entry in report["attributes"]}
    assert set(scored) | set(report["skipped"]) == {"Male", "Smiling"} and report["kept"] == 150
    assert all(0 <= entry["conditional_entropy"] <= 1 for entry in scored.values())
    total = sum(entry["conditional_entropy"] for entry in scored.values())
    assert report["score"] == pytest.approx(2 ** total, rel=1e-3) and report["latent"] == "noise"
    assert "separability" in result.stderr


def test_an_unknown_attribute_is_refused_before_any_model_is_read(cli, tmp_path):
    result = cli("eval", "separability", "--model", tmp_path / "none", "--attribute", "Mael")
    assert result.exit_code == 2 and "Male" in result.stderr
