"""``latentctl train gan`` on tiny synthetic faces, and sampling from the face model it writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import TINY_FACE_FLAGS as TINY_FLAGS
from conftest import weights


def test_train_gan_writes_a_face_model_samples_and_curve(face_model: Path, faces_root: Path) -> None:
    config = json.loads((face_model / "config.json").read_text())
    assert config["kind"] == "gan" and config["labels"] == []
    assert (config["image_size"], config["channels"]) == (32, 3)
    dataset = config["training"]["dataset"]
    assert dataset["synthetic"] is True and dataset["split"] == "train" and dataset["crop"] == 178
    assert config["training"]["options"]["flip"] is True
    options = config["training"]["options"]  # the seed projects' Adam, kept steady by R1
    assert (options["lr"], options["beta1"], options["beta2"], options["r1"]) == (1e-3, 0.5, 0.99, 1.0)
    with Image.open(face_model / "samples" / "epoch_0001.png") as grid:
        assert grid.mode == "RGB" and grid.size[0] > 10 * 32  # 10x10 faces at 2x scale
    assert (face_model / "loss.png").is_file()
    assert (faces_root / "prepared" / "32px-crop178" / "meta.json").is_file()  # prepared on first use


def test_resume_continues_bit_for_bit(cli, faces_root: Path, tmp_path: Path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ("--data-root", faces_root, *TINY_FLAGS, "--r1", "1")  # the lazy R1 schedule resumes in step too
    assert cli("train", "gan", *common, "--out", straight, "--epochs", "2").exit_code == 0
    assert cli("train", "gan", *common, "--out", split, "--epochs", "1").exit_code == 0
    resumed = cli("train", "gan", "--resume", "--data-root", faces_root, "--out", split, "--epochs", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    for name, tensor in weights(straight).items():
        assert torch.equal(tensor, weights(split)[name]), name


def test_json_reports_the_run(cli, faces_root: Path, tmp_path: Path) -> None:
    result = cli("train", "gan", "--data-root", faces_root, "--out", tmp_path / "m", "--epochs", "1", *TINY_FLAGS,
                 "--no-flip", "--r1", "0", "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == 0
    assert document["command"] == "train gan" and document["complete"] is True
    assert document["training"]["options"]["flip"] is False and document["training"]["options"]["r1"] == 0.0
    assert document["training"]["images_seen"] == document["training"]["steps"] * 32


def test_the_r1_penalty_keeps_the_discriminators_gradient_at_real_faces_small(faces_root: Path, tmp_path: Path):
    from latentctl.data.prepare import ensure_prepared
    from latentctl.train.faces import default_config, faces_dataset
    from latentctl.train.gan import GANTrainer, TrainOptions

    dataset = faces_dataset(ensure_prepared(faces_root, 32))
    real = dataset.images[:64].float() / 127.5 - 1
    squared_gradients = {}
    for r1 in (0.0, 10.0):
        trainer = GANTrainer(default_config(32, 16, 8, 8), TrainOptions(epochs=4, batch_size=32, r1=r1), dataset,
                             tmp_path / str(r1), torch.device("cpu"), kind="gan")
        trainer.train()
        squared_gradients[r1] = trainer.r1_penalty(real, None).item()
    assert squared_gradients[10.0] < 0.5 * squared_gradients[0.0]  # measured: 0.15 against 0.75


def test_sync_bn_turns_the_default_r1_penalty_off_and_says_so(cli, faces_root: Path, tmp_path: Path) -> None:
    result = cli("train", "gan", "--data-root", faces_root, "--out", tmp_path / "m", "--epochs", "1", *TINY_FLAGS,
                 "--sync-bn", "--json")
    assert result.exit_code == 0, result.stderr
    assert "turns the R1 penalty off" in result.stderr
    assert json.loads(result.stdout)["training"]["options"]["r1"] == 0.0
    explicit = cli("train", "gan", "--data-root", faces_root, "--out", tmp_path / "n", "--epochs", "1", *TINY_FLAGS,
                   "--sync-bn", "--r1", "1")
    assert explicit.exit_code == 1 and "--r1 0" in explicit.stderr


def test_r1_with_synchronised_batchnorm_is_refused() -> None:
    from latentctl.errors import LatentctlError
    from latentctl.train.gan import TrainOptions

    with pytest.raises(LatentctlError, match="SyncBatchNorm"):
        TrainOptions(r1=1.0, sync_bn=True)
    assert TrainOptions(r1=0.0, sync_bn=True).sync_bn


def test_without_celeba_it_says_how_to_get_it(cli, tmp_path: Path) -> None:
    result = cli("train", "gan", "--data-root", tmp_path / "nothing", "--out", tmp_path / "m")
    assert result.exit_code == 1
    assert "CelebA is not in" in result.stderr and "latentctl data import celeba" in result.stderr
    assert not (tmp_path / "m").exists()


def test_an_unsupported_size_is_a_usage_error(cli, faces_root: Path, tmp_path: Path) -> None:
    result = cli("train", "gan", "--data-root", faces_root, "--out", tmp_path / "m", "--size", "50")
    assert result.exit_code == 2
    assert "50" in result.stderr


def test_resuming_a_digit_run_as_a_face_run_is_refused(cli, tiny_model: Path, faces_root: Path,
                                                      tmp_path: Path) -> None:
    from conftest import TINY, random_digits
    from latentctl.train.gan import GANTrainer, TrainOptions

    out = tmp_path / "digits"
    GANTrainer(TINY, TrainOptions(epochs=2, batch_size=64), random_digits(), out, torch.device("cpu")).train()
    result = cli("train", "gan", "--resume", "--data-root", faces_root, "--out", out, "--epochs", "3")
    assert result.exit_code == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_sample_draws_a_square_grid_of_faces(cli, face_model: Path, tmp_path: Path) -> None:
    result = cli("sample", "--model", face_model, "--n", "9", "--json", tmp_path / "faces.png")
    document = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert [image["seed"] for image in document["images"]] == list(range(9))
    assert "label" not in document["images"][0] and document["images"][8]["row"] == 2
    with Image.open(tmp_path / "faces.png") as grid:
        assert grid.mode == "RGB"
        assert grid.size[0] == grid.size[1]  # 3 x 3


def test_sample_individual_faces_are_named_by_seed(cli, face_model: Path, tmp_path: Path) -> None:
    result = cli("sample", "--model", face_model, "--n", "3", "--seed", "40", "--individual", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "0000-seed40.png", "0001-seed41.png", "0002-seed42.png"]


def test_digit_options_on_a_face_model_are_usage_errors(cli, face_model: Path, tmp_path: Path) -> None:
    sample = cli("sample", "--model", face_model, "--digit", "3", tmp_path / "x.png")
    walk = cli("interpolate", "--model", face_model, "--digit", "3", tmp_path / "x.gif")
    assert sample.exit_code == walk.exit_code == 2
    assert "unconditional" in sample.stderr


def test_interpolate_walks_between_faces(cli, face_model: Path, tmp_path: Path) -> None:
    result = cli("interpolate", "--model", face_model, "--rows", "2", "--frames", "5", "--json",
                 tmp_path / "walk.gif")
    document = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert document["rows"][1] == {"from_seed": 2, "to_seed": 3}
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 8  # forth (5) and back (3), so the loop has no jump
        assert gif.size[0] < gif.size[1]  # two walks stacked, not side by side


def test_a_model_name_is_looked_up_in_the_models_folder(cli, face_model: Path, isolated_home: Path,
                                                        tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(face_model, isolated_home / "models" / "my-faces")
    monkeypatch.chdir(tmp_path)
    result = cli("sample", "--model", "my-faces", "--n", "4", "grid.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "grid.png").is_file()
