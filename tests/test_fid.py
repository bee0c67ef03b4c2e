"""`latentctl eval fid`: FID and KID through torch-fidelity, checked on feature sets with known answers and on a
stand-in feature network (the Inception weights cannot be downloaded in tests); the Inception path itself runs
on a randomly initialised copy of the network, saved as a weights file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentctl import files
from latentctl.data.synth_digits import synth_digits
from latentctl.errors import LatentctlError
from latentctl.eval import fid
from latentctl.store import read_config


class MeanColour:
    """A stand-in feature network: each image's mean and spread per channel and per image half (12 features)."""

    name = "mean-colour"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = images.double() / 255
        halves = [x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]]
        return torch.cat([f(h.flatten(2), dim=2) for h in halves for f in (torch.mean, torch.std)], dim=1)


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    return torch.randn(600, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_identical_feature_sets_have_zero_fid_and_kid(features):
    assert fid.frechet_distance(features, features) == pytest.approx(0, abs=1e-6)
    same, _ = fid.kernel_distance(features, features, subsets=10, subset_size=200)
    shifted, _ = fid.kernel_distance(features, features + 1.0, subsets=10, subset_size=200)
    assert abs(same) < 0.02 * shifted  # KID is unbiased: subsets of one set average to 0, not exactly 0


def test_a_shifted_feature_set_has_the_squared_shift_as_fid(features):
    shift = torch.tensor([0.5, -1.0, 0, 0, 2.0, 0, 0, 0], dtype=torch.float64)
    assert fid.frechet_distance(features, features + shift) == pytest.approx(shift.square().sum().item(), rel=1e-6)


def test_fid_of_gaussians_with_other_spreads_is_the_closed_form():
    """For N(0, a^2 I) and N(0, b^2 I) in d dimensions the Fréchet distance is d (a - b)^2."""
    generator = torch.Generator().manual_seed(1)
    narrow = torch.randn(20_000, 4, generator=generator, dtype=torch.float64)
    wide = 3 * torch.randn(20_000, 4, generator=generator, dtype=torch.float64)
    assert fid.frechet_distance(narrow, wide) == pytest.approx(4 * (3 - 1) ** 2, rel=0.03)


def test_kid_grows_with_the_distance_between_the_sets(features):
    near, _ = fid.kernel_distance(features, features + 0.2, subsets=10, subset_size=200)
    far, _ = fid.kernel_distance(features, features + 1.0, subsets=10, subset_size=200)
    assert 0 < near < far


@pytest.fixture
def digits(isolated_home: Path) -> Path:
    root = isolated_home / "data" / "mnist"
    synth_digits(root, n_train=300, n_test=30, seed=2)
    return root


def test_a_generator_is_scored_against_the_real_images_and_their_features_are_cached(tiny_model, digits):
    network = MeanColour()
    options = fid.FIDOptions(n=120, batch_size=50, kid_subset_size=50, kid_subsets=10)
    first = fid.evaluate_fid(tiny_model, options, data="mnist", network=network, device="cpu")
    assert first.fid > 0 and np.isfinite(first.kid)
    assert (first.generated, first.real, first.data) == (120, 120, "mnist")
    assert first.reference.is_file() and first.reference.parent == digits / "fid" and not first.reference_cached
    assert files.load_tensors(first.reference)["features"].shape == (120, 12)

    calls = network.calls
    again = fid.evaluate_fid(tiny_model, options, data="mnist", network=network, device="cpu")
    assert again.reference_cached and network.calls - calls == 3  # only the generated images were read
    assert again.fid == pytest.approx(first.fid, rel=1e-5) and again.kid == pytest.approx(first.kid, rel=1e-4)


def test_real_digits_against_themselves_score_near_zero_and_generated_noise_far(tiny_model, digits):
    """The metric, end to end: the dataset's own images against themselves give ~0, the untrained model's much more."""
    real = fid.real_images("mnist", read_config(tiny_model))
    network = MeanColour()
    chosen = np.arange(real.count)
    own = fid.extract(iter([real.read(chosen)]), network)
    assert fid.frechet_distance(own[:150], own[150:]) < 0.01
    model = fid.evaluate_fid(tiny_model, fid.FIDOptions(n=150, kid_subset_size=100, kid_subsets=5), data="mnist",
                             network=network, device="cpu")
    assert model.fid > 10 * fid.frechet_distance(own[:150], own[150:])


def test_a_folder_of_images_is_real_data(tiny_model, tmp_path):
    folder = tmp_path / "pictures" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    report = fid.evaluate_fid(tiny_model, fid.FIDOptions(n=12, kid_subset_size=6, kid_subsets=3),
                              data=tmp_path / "pictures", network=MeanColour(), device="cpu")
    assert report.real == 12 and report.data == str(tmp_path / "pictures")


def test_an_empty_folder_or_an_unknown_name_is_refused(tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatentctlError, match="no images"):
        fid.evaluate_fid(tiny_model, data=tmp_path / "empty", network=MeanColour(), device="cpu")
    with pytest.raises(LatentctlError, match="neither a dataset"):
        fid.evaluate_fid(tiny_model, data="imagenet", network=MeanColour(), device="cpu")


# ------------------------------------------------------------------------------------------ the Inception


def test_eval_fid_runs_the_inception_from_a_weights_file(cli, tiny_model, digits, random_inception):
    result = cli("eval", "fid", "--model", tiny_model, "--data", "mnist", "--n", "8", "--batch-size", "4",
                 "--inception-weights", random_inception, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "eval fid" and document["features"] == "inception-v3-compat-2048"
    assert document["generated"] == document["real"] == 8 and document["fid"] >= 0
    assert files.load_tensors(Path(document["reference"]["path"]))["features"].shape == (8, 2048)
    assert "FID" in result.stderr


def test_without_weights_or_internet_eval_fid_says_how_to_get_them(cli, tiny_model, digits, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(fid, "INCEPTION_URL", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    result = cli("eval", "fid", "--model", tiny_model, "--data", "mnist", "--n", "8", "--device", "cpu")
    assert result.exit_code == 1
    assert "cannot download the FID Inception weights" in result.stderr and "--inception-weights" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_weights_file_that_is_not_the_inception_is_refused(cli, tiny_model, digits, tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, other)
    result = cli("eval", "fid", "--model", tiny_model, "--data", "mnist", "--inception-weights", other)
    assert result.exit_code == 1 and "does not hold the FID Inception's weights" in result.stderr


def test_a_weights_file_holding_python_objects_is_never_unpickled(cli, tiny_model, digits, tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "hook": Path("/")}, evil)  # loading it needs full unpickling
    result = cli("eval", "fid", "--model", tiny_model, "--data", "mnist", "--inception-weights", evil)
    assert result.exit_code == 1 and "not a readable weights file" in result.stderr


def test_a_model_without_a_recorded_dataset_needs_data(cli, tiny_model):
    result = cli("eval", "fid", "--model", tiny_model, "--n", "8")
    assert result.exit_code == 2 and "--data" in result.stderr
