"""Shared fixtures: an isolated LATENTCTL_HOME, a CLI runner, tiny models and datasets made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from latentctl import files, store
from latentctl.cli import app
from latentctl.models.dcgan import GANConfig
from latentctl.train.gan import GANTrainer, ImageDataset, TrainOptions

TINY = GANConfig(latent_dim=16, num_classes=10, embed_dim=8, image_size=28, channels=1, gen_width=8, disc_width=8)
# `latentctl train gan` at its smallest: 32 px faces, widths 8, 16-d noise
TINY_FACE_FLAGS = ("--size", "32", "--gen-width", "8", "--disc-width", "8", "--latent-dim", "16", "--batch-size",
                   "32")


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory: pytest.TempPathFactory):
    """A LATENTCTL_HOME for the fixtures that train once per module or session: they are set up before any
    test's own home, and training registers the model it writes there."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LATENTCTL_HOME", str(tmp_path_factory.mktemp("session-home")))
        yield


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own LATENTCTL_HOME, so nothing leaks into the user's real one."""
    home = tmp_path / "home"
    monkeypatch.setenv("LATENTCTL_HOME", str(home))
    return home


@pytest.fixture
def cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def random_digits(n: int = 256, seed: int = 0) -> ImageDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=generator, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    return ImageDataset(images, labels, [str(d) for d in range(10)], "random")


@pytest.fixture(scope="session")
def faces_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 synthetic faces (seed 5), shared by the face GAN tests; modules that need others define their own."""
    from latentctl.data.synth_faces import synth_faces

    root = tmp_path_factory.mktemp("faces")
    synth_faces(root, 200, seed=5, workers=1)
    return root


@pytest.fixture(scope="session")
def face_model(faces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny unconditional face GAN trained for one epoch through the CLI."""
    out = tmp_path_factory.mktemp("models") / "gan"
    result = CliRunner().invoke(app, ["train", "gan", "--data-root", str(faces_root), "--out", str(out),
                                      "--epochs", "1", *TINY_FACE_FLAGS])
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def classifier_32(faces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 32 px attribute classifier trained for one epoch through the CLI, on the shared faces."""
    out = tmp_path_factory.mktemp("models") / "classifier"
    result = CliRunner().invoke(app, ["train", "classifier", "--data-root", str(faces_root), "--out", str(out),
                                      "--epochs", "1", "--size", "32", "--width", "8"])
    assert result.exit_code == 0, result.stderr
    return out


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model folder's weights file."""
    return files.load_tensors(folder / store.WEIGHTS_FILE)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional GAN trained for one epoch on noise: right format, meaningless images."""
    out = tmp_path_factory.mktemp("models") / "tiny-cgan"
    GANTrainer(TINY, TrainOptions(epochs=1, batch_size=64), random_digits(), out, torch.device("cpu")).train()
    return out


@pytest.fixture(scope="session")
def random_inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FID Inception's architecture with random weights, saved as torch-fidelity's weights file is."""
    from torch_fidelity import feature_extractor_inceptionv3 as inception

    from latentctl.eval.fid import FEATURES, INCEPTION_NAME

    with pytest.MonkeyPatch.context() as patch:  # build it without its weights
        patch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = inception.FeatureExtractorInceptionV3(INCEPTION_NAME, [FEATURES])
    path = tmp_path_factory.mktemp("inception") / "weights-inception.pth"
    torch.save(network.state_dict(), path)
    return path
