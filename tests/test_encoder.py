"""`latentctl train encoder`, the encoder as invert's start, and `latentctl eval invert`, on test_invert's tiny
face GAN whose pictures change with the latent: the model folder and its resume, the encoder's first guess
against random starts, finding it beside the model, refusing one made for another generator, and the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latentctl import files, images, store
from latentctl.errors import LatentctlError
from latentctl.latent.encoders import default_encoder_dir, generator_record
from latentctl.latent.inversion import InvertOptions, invert_images
from latentctl.latent.sampling import noise_for_seeds
from latentctl.models.configs import EncoderConfig
from latentctl.train import runs
from latentctl.train.encoder import EncoderTrainer, GeneratorData
from latentctl.train.options import EncoderOptions, EncoderRunOptions
from test_invert import face_model, one_thread, save_attribute_generator, save_classifier  # noqa: F401

CPU = torch.device("cpu")
TINY = {"epoch_images": 256, "batch_size": 32, "width": 8}  # 8 steps an epoch


@pytest.fixture(scope="module")
def encoder(face_model: Path) -> Path:  # noqa: F811
    """An encoder for the tiny GAN in the conventional place beside it, trained 4 epochs of 512 faces."""
    return runs.start("encoder", device="cpu", options=EncoderRunOptions(model=str(face_model), epochs=4,
                                                                       **(TINY | {"epoch_images": 512}))).model


@pytest.fixture
def photos(tmp_path: Path, face_model: Path) -> list[Path]:  # noqa: F811
    """Two faces the tiny GAN draws (seeds 500 and 501: none of the random starts), as PNG files."""
    generator, _ = store.load_model(face_model, "gan")
    with torch.no_grad():
        faces = generator(noise_for_seeds([500, 501], 16))
    return [images.save_image(images.to_pil(face[None], nrow=1, padding=0), tmp_path / f"face{i}.png")
            for i, face in enumerate(faces)]


def test_train_encoder_writes_an_encoder_folder_beside_its_generator_recording_its_weights(face_model: Path,  # noqa: F811
                                                                                          encoder: Path):
    assert encoder == default_encoder_dir(face_model) == face_model.parent / "gan-encoder"
    module, config = store.load_model(encoder, "encoder")
    assert config.kind == "encoder" and (config.image_size, config.latent_dim) == (32, 16)
    assert config.training["generator"]["sha256"] == files.file_sha256(face_model / store.WEIGHTS_FILE)
    assert module(torch.zeros(2, 3, 32, 32)).shape == (2, 16)
    assert config.training["complete"] and config.training["epochs"] == 4 and config.training["steps"] == 64


def test_an_encoder_run_stopped_mid_epoch_resumes_bit_for_bit(face_model: Path, tmp_path: Path):  # noqa: F811
    generator, config = store.load_model(face_model, "gan")
    data = GeneratorData(generator, config, generator_record(face_model))
    network = EncoderConfig(image_size=32, channels=3, latent_dim=16, width=8)
    options = EncoderOptions(epochs=2, epoch_images=256, batch_size=32, log_every=1)
    assert EncoderTrainer(network, options, data, tmp_path / "a", CPU).train()
    stopped = EncoderTrainer(network, options, data, tmp_path / "b", CPU)

    def stop_at_step_3_of_epoch_2(event: str, info: dict) -> None:  # what Ctrl-C does
        if event == "step" and stopped.epoch == 1 and info["step"] == 3:
            stopped.stop_requested = True

    assert stopped.train(stop_at_step_3_of_epoch_2) is False
    assert files.read_json(tmp_path / "b" / store.STATE_JSON_FILE)["step_in_epoch"] == 3
    assert EncoderTrainer.resume(tmp_path / "b", data, CPU).train()
    first, second = (files.load_tensors(tmp_path / run / store.WEIGHTS_FILE) for run in "ab")
    assert all(torch.equal(first[name], second[name]) for name in first)
    other = GeneratorData(generator, config, {"path": "elsewhere", "sha256": "0" * 64})
    with pytest.raises(LatentctlError, match="whose weights are not those"):
        EncoderTrainer.resume(tmp_path / "b", other, CPU, epochs=3)


def test_the_encoders_guess_starts_closer_than_the_best_of_64_random_starts(face_model: Path,  # noqa: F811
                                                                            encoder: Path):
    generator, _ = store.load_model(face_model, "gan")
    module, _ = store.load_model(encoder, "encoder")
    with torch.no_grad():
        faces = generator(noise_for_seeds(range(500, 516), 16))  # seeds no random start and no training drew
    random = invert_images(generator, faces, InvertOptions(steps=0, starts=64))
    guessed = invert_images(generator, faces, InvertOptions(steps=0), encoder=module)
    assert guessed.start_loss.mean() < random.start_loss.mean()
    assert guessed.start_seeds == [None] * 16


def test_invert_starts_from_the_encoder_beside_the_model_unless_told_not_to(cli, face_model: Path,  # noqa: F811
                                                                            encoder: Path, photos: list[Path],
                                                                            tmp_path: Path):
    out = tmp_path / "latents.safetensors"
    found = cli("invert", *photos, "--model", face_model, "--out", out, "--steps", "5", "--json")
    assert found.exit_code == 0, found.stderr
    document = json.loads(found.stdout)
    assert document["encoder"] == str(encoder) and document["settings"]["starts"] == 0
    assert [photo["start_seed"] for photo in document["photos"]] == [None, None]
    assert "the encoder's guess" in found.stderr
    without = json.loads(cli("invert", *photos, "--model", face_model, "--out", out, "--steps", "0", "--starts", "4",
                             "--no-encoder", "--json").stdout)
    assert without["encoder"] is None and without["photos"][0]["start_seed"] in range(4)


def test_invert_with_an_encoder_given_by_path(cli, face_model: Path, encoder: Path, photos: list[Path],  # noqa: F811
                                              tmp_path: Path):
    result = cli("invert", photos[0], "--model", face_model, "--encoder", encoder, "--out",
                 tmp_path / "one.safetensors", "--steps", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["encoder"] == str(encoder)


def test_an_encoder_for_another_generator_is_refused_with_a_hint(cli, face_model: Path, encoder: Path,  # noqa: F811
                                                                 photos: list[Path], tmp_path: Path):
    other = save_attribute_generator(tmp_path / "other")
    with pytest.raises(LatentctlError, match="an encoder for another generator"):
        from latentctl.latent.encoders import check_encoder

        check_encoder(store.read_config(encoder, "encoder"), encoder, store.read_config(other), other)
    retrained = tmp_path / "gan"  # the same architecture, other weights
    generator, config = store.load_model(face_model, "gan")
    torch.nn.init.normal_(generator.net[0].weight)
    store.save_model(retrained, config, generator)
    result = cli("invert", photos[0], "--model", retrained, "--encoder", encoder, "--out",
                 tmp_path / "x.safetensors", "--steps", "1")
    assert result.exit_code == 1
    assert "is an encoder for another generator" in result.stderr and "latentctl train encoder" in result.stderr
    error, hint = result.stderr.strip().splitlines()[-2:]  # after the warning that there is no classifier
    assert error.startswith("error: ") and hint.startswith("hint: ") and "Traceback" not in result.stderr


def test_a_mismatched_encoder_beside_the_model_is_left_out_with_a_warning(face_model: Path, tmp_path: Path,  # noqa: F811
                                                                         encoder: Path, photos: list[Path], cli):
    generator, config = store.load_model(face_model, "gan")
    torch.nn.init.normal_(generator.net[0].weight)
    store.save_model(tmp_path / "gan", config, generator)
    store.save_model(tmp_path / "gan-encoder", store.read_config(encoder), store.load_model(encoder, "encoder")[0])
    result = cli("invert", photos[0], "--model", tmp_path / "gan", "--out", tmp_path / "x.safetensors",
                 "--steps", "0", "--starts", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["encoder"] is None and "not using" in result.stderr


def test_train_encoder_refuses_a_digit_gan_and_an_attribute_conditioned_one(cli, tiny_model: Path,
                                                                           tmp_path: Path):
    digits = cli("train", "encoder", "--model", tiny_model, "--out", tmp_path / "e1")
    assert digits.exit_code == 1 and "draws digits by label" in digits.stderr
    conditioned = cli("train", "encoder", "--model", save_attribute_generator(tmp_path / "attr"),
                      "--classifier", save_classifier(tmp_path / "classifier"), "--out", tmp_path / "e2")
    assert conditioned.exit_code == 1 and "conditioned on attributes" in conditioned.stderr


def test_train_encoder_through_the_cli_then_resume(cli, face_model: Path, tmp_path: Path):  # noqa: F811
    out = tmp_path / "enc"
    first = cli("train", "encoder", "--model", face_model, "--out", out, "--epochs", "1", "--epoch-images", "64",
                "--batch-size", "32", "--width", "4", "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["training"]["generator"] == generator_record(face_model)
    again = cli("train", "encoder", "--model", face_model, "--out", out, "--epochs", "1")
    assert again.exit_code == 1 and "already holds a training run" in again.stderr
    resumed = cli("train", "encoder", "--out", out, "--resume", "--epochs", "2", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epoch"] == 2


def test_eval_invert_reports_reconstruction_edits_and_the_known_latent_test(cli, face_model: Path,  # noqa: F811
                                                                           encoder: Path, photos: list[Path],
                                                                           tmp_path: Path):
    classifier, judge = save_classifier(tmp_path / "classifier"), save_classifier(tmp_path / "judge")
    judge_network, judge_config = store.load_model(judge, "classifier")
    with torch.no_grad():  # another classifier than the one that steers
        for weight in judge_network.parameters():
            weight.add_(0.1 * torch.randn_like(weight))
    store.save_model(judge, judge_config, judge_network)
    result = cli("eval", "invert", photos[0].parent, "--judge", judge, "--model", face_model, "--classifier",
                 classifier, "--known", "2", "--invert-steps", "2", "--starts", "4", "--attribute", "Smiling", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "eval invert" and document["photos"] == 2 and document["encoder"] == str(encoder)
    assert [row["start"] for row in document["starts"]] == ["random starts", "encoder"]
    for row in document["starts"]:
        assert {"psnr_db", "mean_abs_error", "agreement", "seconds_per_face", "known_psnr_db", "known_latent_rmse",
                "known_latent_cosine"} <= set(row)
        assert row["psnr_db"] > 5 and 0 <= row["agreement"] <= 1
    assert {(row["start"], row["attribute"]) for row in document["edits"]} == {("random starts", "Smiling"),
                                                                                 ("encoder", "Smiling")}
    assert all({"faces", "success", "others", "moved"} <= set(row) for row in document["edits"])
