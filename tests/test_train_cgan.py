"""`latentctl train cgan`: files written, refusing to clobber a run, exact resume, Ctrl-C, divergence."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, random_digits
from latentctl import files, store
from latentctl.data.synth_digits import synth_digits
from latentctl.errors import LatentctlError
from latentctl.train.gan import GANTrainer, TrainOptions

TINY_FLAGS = ["--batch-size", "32", "--latent-dim", "16", "--gen-width", "8", "--disc-width", "8"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "digits"
    synth_digits(root, n_train=128, n_test=32, seed=0)
    return root


def train(cli, digits: Path, out: Path, *extra: str):
    return cli("train", "cgan", "--data-root", digits, "--out", out, *TINY_FLAGS, *extra)


def test_train_writes_model_samples_curve_and_state(cli, digits, tmp_path):
    out = tmp_path / "run"
    result = train(cli, digits, out, "--epochs", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["complete"] and report["epoch"] == 2
    for name in ("model.safetensors", "config.json", "training_state.safetensors", "training_state.json",
                 "loss.png", "samples/epoch_0001.png", "samples/epoch_0002.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in report["files"]
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "cgan" and config["labels"] == [str(d) for d in range(10)]
    assert config["training"]["epochs"] == 2 and config["training"]["dataset"]["synthetic"] is True
    assert "epoch 2/2" in result.stderr  # progress goes to stderr, the JSON alone to stdout


def test_without_json_stdout_is_the_model_folder(cli, digits, tmp_path):
    result = train(cli, digits, tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 0 and result.stdout.strip() == str(tmp_path / "run")


def test_an_existing_run_is_not_overwritten_by_accident(cli, digits, tmp_path):
    out = tmp_path / "run"
    assert train(cli, digits, out, "--epochs", "1").exit_code == 0
    before = (out / "model.safetensors").read_bytes()
    result = train(cli, digits, out, "--epochs", "1")
    assert result.exit_code == 1
    assert "already holds a training run" in result.stderr and "--resume" in result.stderr
    assert (out / "model.safetensors").read_bytes() == before
    assert train(cli, digits, out, "--epochs", "1", "--force", "--seed", "3").exit_code == 0
    assert (out / "model.safetensors").read_bytes() != before


def test_resume_and_force_together_is_a_usage_error(cli, digits, tmp_path):
    result = train(cli, digits, tmp_path / "run", "--resume", "--force")
    assert result.exit_code == 2


def test_resume_without_a_run_explains(cli, digits, tmp_path):
    result = train(cli, digits, tmp_path / "nothing", "--resume")
    assert result.exit_code == 1 and "no training state" in result.stderr


def test_resume_of_a_finished_run_asks_for_more_epochs(cli, digits, tmp_path):
    out = tmp_path / "run"
    train(cli, digits, out, "--epochs", "1")
    result = train(cli, digits, out, "--resume")
    assert result.exit_code == 1 and "--epochs" in result.stderr


def test_missing_dataset_is_a_one_line_error_with_a_hint(cli, tmp_path):
    result = cli("train", "cgan", "--data-root", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert "latentctl data" in result.stderr and "Traceback" not in result.output


def test_resume_across_epochs_is_bit_exact(cli, digits, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(cli, digits, straight, "--epochs", "3").exit_code == 0
    assert train(cli, digits, resumed, "--epochs", "1").exit_code == 0
    assert train(cli, digits, resumed, "--resume", "--epochs", "3").exit_code == 0
    assert _weights(straight) == _weights(resumed)


def test_the_library_call_trains_and_resumes_as_the_cli_does(cli, digits, tmp_path):
    from latentctl.train import runs
    from latentctl.train.options import CGANRunOptions

    tiny = CGANRunOptions(epochs=1, batch_size=32, latent_dim=16, gen_width=8, disc_width=8)
    first = runs.start("cgan", out=tmp_path / "python", data_root=digits, options=tiny)
    assert first.complete and first.epoch == 1 and str(tmp_path / "python" / "config.json") in first.to_json()["files"]
    resumed = runs.start("cgan", out=tmp_path / "python", data_root=digits, options=CGANRunOptions(epochs=3),
                         resume=True)
    assert resumed.complete and resumed.epoch == 3
    assert train(cli, digits, tmp_path / "cli", "--epochs", "3").exit_code == 0
    assert _weights(tmp_path / "python") == _weights(tmp_path / "cli")


def test_stopping_mid_epoch_and_resuming_is_bit_exact(tmp_path):
    dataset = random_digits(256)
    options = TrainOptions(epochs=2, batch_size=32, seed=1)
    straight = GANTrainer(TINY, options, dataset, tmp_path / "a", torch.device("cpu"))
    assert straight.train()

    stopped = GANTrainer(TINY, options, dataset, tmp_path / "b", torch.device("cpu"))
    stopped.options.log_every = 1

    def stop_at_step_3_of_epoch_2(event: str, info: dict) -> None:
        if event == "step" and stopped.epoch == 1 and info["step"] == 3:
            stopped.stop_requested = True

    assert stopped.train(stop_at_step_3_of_epoch_2) is False
    assert json.loads((tmp_path / "b" / "training_state.json").read_text())["step_in_epoch"] == 3
    resumed = GANTrainer.resume(tmp_path / "b", dataset, torch.device("cpu"))
    resumed.options.log_every = options.log_every
    assert resumed.train()
    assert _weights(tmp_path / "a") == _weights(tmp_path / "b")


def test_divergence_stops_and_keeps_the_last_good_model(tmp_path):
    trainer = GANTrainer(TINY, TrainOptions(epochs=3, batch_size=32, log_every=2), random_digits(256),
                         tmp_path, torch.device("cpu"))
    trainer.options.epochs = 1
    trainer.train()
    good = (tmp_path / "model.safetensors").read_bytes()
    trainer.options.epochs = 3
    with torch.no_grad():
        trainer.discriminator.head.bias.fill_(float("nan"))
    with pytest.raises(LatentctlError, match="diverged") as error:
        trainer.train()
    assert "--force" in error.value.hint
    assert (tmp_path / "model.safetensors").read_bytes() == good
    assert json.loads((tmp_path / "training_state.json").read_text())["epoch"] == 1


def test_a_collapsed_discriminator_stops_training_and_keeps_the_last_good_model(tmp_path):
    trainer = GANTrainer(TINY, TrainOptions(epochs=1, batch_size=32, log_every=2), random_digits(256),
                         tmp_path, torch.device("cpu"))
    trainer.train()
    good = (tmp_path / "model.safetensors").read_bytes()
    trainer.options.epochs = 2
    readings = trainer._readings

    def collapsed() -> dict[str, float]:  # the epoch's means when D rejects every fake: G learns nothing
        return {**readings(), "d_real": 0.9999, "d_fake": 1e-5, "loss_g": 11.5}

    trainer._readings = collapsed
    with pytest.raises(LatentctlError, match="discriminator collapsed at epoch 2") as error:
        trainer.train()
    assert "--force" in error.value.hint
    assert (tmp_path / "model.safetensors").read_bytes() == good
    assert json.loads((tmp_path / "training_state.json").read_text())["epoch"] == 1


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_saves_exits_130_and_resume_finishes(digits, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "latentctl", "train", "cgan", "--data-root", str(digits), "--out",
               str(out), *TINY_FLAGS, "--epochs", "400", "--sample-every", "1000"]
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "training_state.json").exists():  # the first epoch is saved: training is under way
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and f"latentctl train cgan --resume --out {out} --data-root {digits}" in stderr
    stopped_at = json.loads((out / "training_state.json").read_text())["epoch"]
    assert 1 <= stopped_at < 400
    store.load_model(out, "cgan")  # the model on disk is whole

    resumed = subprocess.run([*command[:-4], "--resume", "--epochs", str(stopped_at + 1), "--json"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epoch"] == stopped_at + 1


def _weights(folder: Path) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in files.load_tensors(folder / "model.safetensors").items()}


def test_force_with_a_wrong_data_root_keeps_the_old_run(cli, digits, tmp_path):
    out = tmp_path / "run"
    train(cli, digits, out, "--epochs", "1")
    result = cli("train", "cgan", "--data-root", tmp_path / "typo", "--out", out, "--force")
    assert result.exit_code == 1
    assert (out / "model.safetensors").is_file() and (out / "training_state.json").is_file()


def test_resume_says_which_new_settings_it_ignores(cli, digits, tmp_path):
    out = tmp_path / "run"
    train(cli, digits, out, "--epochs", "1")
    result = cli("train", "cgan", "--data-root", digits, "--out", out, "--resume", "--epochs", "2", "--lr", "0.1")
    assert result.exit_code == 0
    assert "ignoring --lr" in result.stderr
    assert json.loads((out / "training_state.json").read_text())["options"]["lr"] == 2e-4


def test_a_zero_learning_rate_is_a_usage_error(cli, digits, tmp_path):
    assert train(cli, digits, tmp_path / "run", "--lr", "0").exit_code == 2


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_never_aborts_a_checkpoint_being_written(tmp_path):
    from latentctl.train.runs import stop_on_interrupt

    trainer = GANTrainer(TINY, TrainOptions(epochs=1, batch_size=32), random_digits(64), tmp_path,
                         torch.device("cpu"))
    with stop_on_interrupt(trainer):
        trainer.saving = True
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # would abort at once were no checkpoint being written
        time.sleep(0.1)
        assert trainer.stop_requested
        trainer.saving = False
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)


def test_a_full_disk_is_one_line_keeps_the_last_checkpoint_and_resume_finishes(cli, digits, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert train(cli, digits, out, "--epochs", "1").exit_code == 0
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}

    import safetensors.torch

    def no_space(tensors, filename, metadata=None):
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(safetensors.torch, "save_file", no_space)
    full = train(cli, digits, out, "--resume", "--epochs", "2")
    assert full.exit_code == 1
    error, hint = full.stderr.strip().splitlines()[-2:]  # the message is the last thing said, in two lines
    assert error == f"error: the disk is full: {out / 'training_state.safetensors'}"  # the file, not a temporary
    assert hint.startswith("hint: free some space") and "Traceback" not in full.output
    after = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    assert after.keys() == before.keys()  # no temporary file left behind
    checkpoint = [name for name in before if name != "loss.png"]  # the curve is redrawn with the next save
    assert {name: after[name] for name in checkpoint} == {name: before[name] for name in checkpoint}
    store.load_model(out, "cgan")

    monkeypatch.undo()
    resumed = train(cli, digits, out, "--resume", "--epochs", "2", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epoch"] == 2
