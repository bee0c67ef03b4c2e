"""`train ... --fid-every N` and `--log-dir DIR`: FID measured during training, recorded and plotted, and
TensorBoard event files a user can open. The Inception cannot be downloaded in tests: the FID seam
(``latentctl.eval.fid.Inception``) gets a small stand-in feature network."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from latentctl import files, hub, store
from latentctl.data.synth_digits import synth_digits
from latentctl.eval import fid

TINY_CGAN = ("--epochs", "2", "--batch-size", "64", "--gen-width", "8", "--disc-width", "8", "--latent-dim", "16")


class Pixels:
    """A stand-in for the Inception: a few pooled pixel statistics of each image."""

    name = "pixels"

    def __init__(self, weights=None, device="cpu") -> None:
        pass

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.double() / 255, 2)  # (N, 3, 2, 2)
        return pooled.flatten(1)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    synth_digits(root, n_train=640, n_test=64, seed=4)
    return root


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fid, "Inception", Pixels)


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0}).Reload()
    found = {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    found["images"] = [(event.step, event.width) for tag in events.Tags()["images"] for event in events.Images(tag)]
    return found


def test_fid_every_epoch_is_recorded_plotted_and_logged_for_tensorboard(cli, digits, stand_in, tmp_path):
    out, logs = tmp_path / "run", tmp_path / "tb"
    result = cli("train", "cgan", "--data-root", digits, "--out", out, *TINY_CGAN, "--fid-every", "1",
                 "--fid-images", "60", "--log-dir", logs, "--json")
    assert result.exit_code == 0, result.stderr
    training = json.loads(result.stdout)["training"]
    assert [entry["epoch"] for entry in training["fid"]] == [1, 2]
    assert all(entry["fid"] > 0 and entry["fid_images"] == 60 for entry in training["fid"])
    assert training["final"]["fid"] == training["fid"][-1]["fid"]
    state = files.read_json(out / store.STATE_JSON_FILE)
    assert [round(entry["fid"], 4) for entry in state["epochs"]] == [entry["fid"] for entry in training["fid"]]
    assert (out / "fid.png").is_file() and "FID" in result.stderr
    assert (digits / "fid").is_dir()  # the real digits' features, cached where `eval fid` looks

    logged = scalars(logs)
    steps_per_epoch = 640 // 64
    assert [step for step, _ in logged["metrics/fid"]] == [steps_per_epoch, 2 * steps_per_epoch]
    assert logged["metrics/fid"][-1][1] == pytest.approx(training["fid"][-1]["fid"], rel=1e-4)
    assert {"train/loss_d", "train/loss_g", "train/learning_rate", "speed/images_per_second",
            "epoch/loss_d"} <= set(logged)
    assert logged["train/learning_rate"][0][1] == pytest.approx(2e-4)
    assert len(logged["images"]) == 2  # the sample grid of each epoch

    card = hub.model_card(store.read_config(out), "ada/digits")
    assert "FID (KID) by epoch" in card and "60 images" in card


def test_a_resume_may_turn_fid_on_and_the_logs_continue(cli, digits, stand_in, tmp_path):
    out, logs = tmp_path / "run", tmp_path / "tb"
    assert cli("train", "cgan", "--data-root", digits, "--out", out, *TINY_CGAN, "--log-dir", logs).exit_code == 0
    result = cli("train", "cgan", "--data-root", digits, "--out", out, "--resume", "--epochs", "3", "--fid-every", "1",
                 "--fid-images", "40", "--log-dir", logs, "--json")
    assert result.exit_code == 0, result.stderr
    assert "ignoring" not in result.stderr  # watching a run is not one of the settings a resume keeps
    assert [entry["epoch"] for entry in json.loads(result.stdout)["training"]["fid"]] == [3]
    logged = scalars(logs)
    steps_per_epoch = 640 // 64
    assert [step for step, _ in logged["epoch/loss_d"]] == [steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch]
    assert [step for step, _ in logged["metrics/fid"]] == [3 * steps_per_epoch]


def test_without_the_inception_weights_a_run_with_fid_stops_before_training(cli, digits, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(fid, "INCEPTION_URL", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    result = cli("train", "cgan", "--data-root", digits, "--out", tmp_path / "run", *TINY_CGAN, "--fid-every", "1")
    assert result.exit_code == 1 and "cannot download the FID Inception weights" in result.stderr
    assert "--inception-weights" in result.stderr and not (tmp_path / "run" / store.CONFIG_FILE).exists()


def test_log_dir_without_tensorboard_says_how_to_install_it(cli, digits, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were missing
    result = cli("train", "cgan", "--data-root", digits, "--out", tmp_path / "run", *TINY_CGAN, "--log-dir",
                 tmp_path / "tb")
    assert result.exit_code == 1 and "needs TensorBoard" in result.stderr
    assert "latentctl[tensorboard]" in result.stderr and "Traceback" not in result.stderr


def test_the_classifier_logs_its_loss_learning_rate_and_validation(cli, faces_root, tmp_path):
    logs = tmp_path / "tb"
    result = cli("train", "classifier", "--data-root", faces_root, "--out", tmp_path / "clf", "--epochs", "2",
                 "--size", "32", "--width", "8", "--batch-size", "8", "--log-dir", logs)
    assert result.exit_code == 0, result.stderr
    logged = scalars(logs)
    rates = [value for _, value in logged["train/learning_rate"]]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]  # the cosine schedule
    assert len(logged["epoch/mean_balanced_accuracy"]) == 2


def test_a_gan_trained_on_an_imported_folder_is_scored_against_it_during_and_after_training(cli, stand_in, tmp_path):
    from folder_images import make_folder

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    assert cli("data", "import", "folder", make_folder(pictures), "--name", "pets", "--size", "32").exit_code == 0
    out = tmp_path / "gan"
    trained = cli("train", "gan", "--data", "pets", "--out", out, "--epochs", "1", "--size", "32", "--gen-width", "8",
                  "--disc-width", "8", "--latent-dim", "16", "--batch-size", "16", "--fid-every", "1",
                  "--fid-images", "30", "--json")
    assert trained.exit_code == 0, trained.stderr
    recorded = json.loads(trained.stdout)["training"]["fid"][0]
    report = fid.evaluate_fid(out, fid.FIDOptions(n=30, kid_subset_size=30), network=Pixels(), device="cpu")
    assert report.data == "pets" and report.reference_cached  # the run's real features, reused
    assert report.fid == pytest.approx(recorded["fid"], abs=1e-3)
