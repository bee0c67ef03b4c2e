"""`latentctl models import --arch pytorch-dcgan`: pytorch/examples' DCGAN generators become model folders that
draw what its code draws.

The "original code" below is written out independently from pytorch/examples' ``dcgan/main.py`` (its
``Generator`` and ``Discriminator`` are one ``nn.Sequential`` named ``main``, kernel-4 convolutions without
biases, fed noise (N, nz, 1, 1)); its random state dicts are saved as that script saves them,
``torch.save(netG.state_dict(), 'netG_epoch_N.pth')``, and the imported models must match it to 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from import_helpers import Tripwire, imported, set_batchnorm
from latentctl import store
from latentctl.data.celeba import CELEBA_ATTRIBUTES
from latentctl.latent.sampling import noise_for_seeds
from latentctl.models.classifier import AttributeClassifier, ClassifierConfig

# --------------------------------------------------------------------------- pytorch/examples' networks


class ExamplesGenerator(nn.Module):
    """pytorch/examples' netG: (N, nz, 1, 1) -> 4 -> 8 -> 16 -> 32 -> (N, nc, 64, 64)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.main(noise)


class ExamplesDiscriminator(nn.Module):
    """pytorch/examples' netD: (N, nc, 64, 64) -> 32 -> 16 -> 8 -> 4 -> a probability (N,)."""

    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).view(-1, 1).squeeze(1)


def trained_looking(module: nn.Module, seed: int = 0) -> nn.Module:
    """pytorch/examples' initialisation (convolutions ~ N(0, 0.02)) made louder so the pictures are not flat,
    and BatchNorm statistics and affine parameters such as training leaves."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.1)
            elif isinstance(layer, nn.BatchNorm2d):
                set_batchnorm(layer, generator, 5678)
    return module.eval()


def save_examples(tmp_path: Path, module: nn.Module, name: str = "netG_epoch_24.pth") -> Path:
    path = tmp_path / name
    torch.save(module.state_dict(), path)  # as dcgan/main.py checkpoints each epoch
    return path


def draw(reference: nn.Module, noise: torch.Tensor) -> torch.Tensor:
    """What pytorch/examples' code draws from noise (N, nz): images (N, nc, 64, 64) in [-1, 1]."""
    with torch.no_grad():
        return reference(noise[:, :, None, None])


def refused(cli, *args) -> str:
    """Import, expecting a one-line error and its hint on stderr; return stderr."""
    result = cli("models", "import", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 2, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


# ------------------------------------------------------------------------------------------ same outputs


@pytest.mark.parametrize(("nz", "ngf", "nc"), [(64, 16, 3), (32, 8, 1)])
def test_imported_netG_draws_exactly_what_pytorch_examples_draws(cli, tmp_path, nz, ngf, nc):
    reference = trained_looking(ExamplesGenerator(nz, ngf, nc))
    report = imported(cli, save_examples(tmp_path, reference), "--kind", "gan", "--arch", "pytorch-dcgan")
    assert (report["arch"], report["name"], report["kind"], report["tensors"]) == \
        ("pytorch-dcgan", "netG_epoch_24", "gan", 5 + 4 * 5)
    generator, config = store.load_model(Path(report["model"]), "gan")
    assert config.architecture == {"name": "pytorch-dcgan", "latent_dim": nz, "gen_width": ngf, "channels": nc,
                                   "image_size": 64}
    assert (config.image_size, config.channels, config.latent_dim, config.labels) == (64, nc, nz, [])
    noise = torch.randn(5, nz, generator=torch.Generator().manual_seed(1))
    expected = draw(reference, noise)
    assert expected.shape == (5, nc, 64, 64) and expected.std() > 0.1
    with torch.no_grad():
        torch.testing.assert_close(generator(noise), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(generator(noise[:, :, None, None]), expected, atol=1e-5, rtol=0)


def test_the_architecture_is_detected_from_the_tensor_names(cli, tmp_path):
    reference = trained_looking(ExamplesGenerator(16, 8, 3))
    report = imported(cli, save_examples(tmp_path, reference), "--kind", "gan")
    assert report["arch"] == "pytorch-dcgan" and report["config"]["latent_dim"] == 16


def test_the_import_records_pytorch_examples_preprocessing(cli, tmp_path):
    report = imported(cli, save_examples(tmp_path, ExamplesGenerator(16, 8, 1)), "--kind", "gan")
    config = json.loads((Path(report["model"]) / "config.json").read_text())
    assert config["normalization"] == {"mean": [0.5], "std": [0.5]}
    assert config["training"]["preprocessing"] == {
        "size": 64, "resize": "bilinear", "pixels": "x / 127.5 - 1",
        "pytorch_examples": "Resize(64), CenterCrop(64), ToTensor(), Normalize((0.5,), (0.5,))"}
    assert config["training"]["imported"]["arch"] == "pytorch-dcgan"


def test_a_data_parallel_prefix_is_dropped(cli, tmp_path):
    reference = trained_looking(ExamplesGenerator(16, 8, 3), seed=2)
    torch.save({f"module.{name}": value for name, value in reference.state_dict().items()}, tmp_path / "netG.pth")
    report = imported(cli, tmp_path / "netG.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    generator, _ = store.load_model(Path(report["model"]), "gan")
    noise = torch.randn(3, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(generator(noise), draw(reference, noise), atol=1e-5, rtol=0)


def test_a_checkpoint_of_old_pytorch_without_batch_counters_imports(cli, tmp_path):
    reference = trained_looking(ExamplesGenerator(16, 8, 3), seed=4)
    state = {name: value for name, value in reference.state_dict().items() if "num_batches_tracked" not in name}
    torch.save(state, tmp_path / "netG_2017.pth")
    report = imported(cli, tmp_path / "netG_2017.pth", "--kind", "gan")
    generator, _ = store.load_model(Path(report["model"]), "gan")
    noise = torch.randn(3, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(generator(noise), draw(reference, noise), atol=1e-5, rtol=0)


# ------------------------------------------------------------------ every command takes it like its own


def test_sample_draws_the_pictures_pytorch_examples_draws_from_the_same_noise(cli, tmp_path):
    reference = trained_looking(ExamplesGenerator(32, 16, 3), seed=6)
    imported(cli, save_examples(tmp_path, reference), "--kind", "gan", "--arch", "pytorch-dcgan")
    result = cli("sample", "--model", "netG_epoch_24", "--n", "4", "--seed", "5", "--individual", tmp_path / "out",
                 "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [image["seed"] for image in document["images"]] == [5, 6, 7, 8]
    expected = draw(reference, noise_for_seeds([5, 6, 7, 8], 32))  # (4, 3, 64, 64) in [-1, 1]
    for index, record in enumerate(document["images"]):
        pixels = torch.from_numpy(np.array(Image.open(record["path"]))).permute(2, 0, 1).float()
        assert pixels.shape == (3, 64, 64)
        assert (pixels - expected[index].add(1).mul(127.5)).abs().max() <= 1.0  # up to 8-bit rounding
    grid = cli("sample", "--model", "netG_epoch_24", "--n", "16", tmp_path / "grid.png")
    assert grid.exit_code == 0, grid.output
    assert Image.open(tmp_path / "grid.png").size == (4 * 64 + 5 * 2, 4 * 64 + 5 * 2)


def test_interpolate_walks_an_imported_generator(cli, tmp_path):
    imported(cli, save_examples(tmp_path, trained_looking(ExamplesGenerator(16, 8, 1))), "--kind", "gan")
    result = cli("interpolate", "--model", "netG_epoch_24", "--rows", "2", "--frames", "3", "--json",
                 tmp_path / "walk.png")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["frames"], len(document["rows"]), document["output"]) == (3, 2, str(tmp_path / "walk.png"))
    assert Image.open(tmp_path / "walk.png").mode == "L"


def test_steer_moves_an_imported_generator_with_a_classifier_of_its_size(cli, tmp_path):
    imported(cli, save_examples(tmp_path, trained_looking(ExamplesGenerator(16, 8, 3))), "--kind", "gan")
    torch.manual_seed(0)
    network = ClassifierConfig(image_size=64, width=4)
    store.save_model(tmp_path / "classifier", store.ModelConfig(
        kind="classifier", network=network, labels=list(CELEBA_ATTRIBUTES),
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3}), AttributeClassifier(network).eval())
    result = cli("steer", "--model", "netG_epoch_24", "--classifier", tmp_path / "classifier", "--to", "Male",
                 "--n", "2", "--frames", "3", "--steps", "4", "--device", "cpu", "--json", tmp_path / "male.png")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["faces"]) == 2
    assert Image.open(tmp_path / "male.png").size[1] >= 2 * 64


def test_a_hub_model_card_says_where_an_imported_generator_comes_from(cli, tmp_path):
    from latentctl import hub

    report = imported(cli, save_examples(tmp_path, ExamplesGenerator(16, 8, 3)), "--kind", "gan")
    card = hub.model_card(store.read_config(Path(report["model"])), "ada/bedrooms")
    assert "from the pytorch/examples' DCGAN checkpoint `netG_epoch_24.pth`" in card
    assert "architecture `pytorch-dcgan`" in card and "64x64 RGB images from 16-d Gaussian noise" in card


# ------------------------------------------------------------------------------- what the file may hold


def test_a_discriminator_is_refused_with_the_generator_to_import_instead(cli, tmp_path):
    path = save_examples(tmp_path, ExamplesDiscriminator(8, 3), "netD_epoch_24.pth")
    for arch in (("--arch", "pytorch-dcgan"), ()):
        stderr = refused(cli, path, "--kind", "gan", *arch)
        assert "holds the discriminator of pytorch/examples' DCGAN (netD), not its generator" in stderr
        assert "netG_epoch_N.pth" in stderr
    assert not (tmp_path / "home/models/netD_epoch_24").exists()


def test_a_generator_imported_as_another_kind_is_refused_with_the_right_kind(cli, tmp_path):
    path = save_examples(tmp_path, ExamplesGenerator(16, 8, 3))
    for kind in ("classifier", "cgan"):
        stderr = refused(cli, path, "--kind", kind)
        assert f"holds pytorch/examples' DCGAN generator, an unconditional one, not a {kind}" in stderr
        assert "--kind gan" in stderr


def test_a_netG_given_a_seed_arch_is_refused_with_the_arch_to_pass(cli, tmp_path):
    stderr = refused(cli, save_examples(tmp_path, ExamplesGenerator(16, 8, 3)), "--kind", "gan", "--arch", "dcgan-64")
    assert "its tensors are named main.*, the seed's gen.*" in stderr and "--arch pytorch-dcgan" in stderr


def test_a_seed_checkpoint_given_as_pytorch_dcgan_is_refused(cli, tmp_path):
    torch.save({"gen": {"gen.0.0.weight": torch.zeros(64, 512, 3, 3)}}, tmp_path / "seed.pth")
    stderr = refused(cli, tmp_path / "seed.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    assert "holds a seed notebook's checkpoint ({'gen': state_dict})" in stderr and "leave out --arch" in stderr


def test_a_classifier_state_dict_is_refused_by_its_tensor_names(cli, tmp_path):
    classifier = AttributeClassifier(ClassifierConfig(image_size=64, width=4))
    torch.save(classifier.state_dict(), tmp_path / "classifier.pth")
    stderr = refused(cli, tmp_path / "classifier.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    assert "does not hold pytorch/examples' DCGAN generator: its tensors are named" in stderr
    assert "its main.N.*" in stderr


def test_a_wrongly_shaped_tensor_is_named_with_the_sizes_read(cli, tmp_path):
    state = ExamplesGenerator(16, 8, 3).state_dict()
    state["main.4.running_var"] = torch.ones(7)
    torch.save(state, tmp_path / "bad.pth")
    stderr = refused(cli, tmp_path / "bad.pth", "--kind", "gan")
    assert "does not match pytorch/examples' DCGAN generator of nz 16, ngf 8, nc 3: " \
           "wrong shape main.4.running_var (7,) != (32,)" in stderr


def test_a_larger_variant_with_another_layer_is_refused(cli, tmp_path):
    state = ExamplesGenerator(16, 8, 3).state_dict()
    state["main.15.weight"] = torch.zeros(8, 3, 4, 4)
    torch.save(state, tmp_path / "netG_128.pth")
    stderr = refused(cli, tmp_path / "netG_128.pth", "--kind", "gan")
    assert "unexpected main.15.weight" in stderr


def test_a_file_that_needs_full_unpickling_is_refused_without_unpickling_it(cli, tmp_path):
    Tripwire.unpickled = False
    state = ExamplesGenerator(16, 8, 3).state_dict()
    state["main.99"] = Tripwire()
    torch.save(state, tmp_path / "with-object.pth")
    stderr = refused(cli, tmp_path / "with-object.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    assert "Tripwire object, not only tensors: loading it needs full unpickling" in stderr
    assert not Tripwire.unpickled


def test_a_pickled_network_is_refused_with_how_to_save_its_weights(cli, tmp_path):
    torch.save(ExamplesGenerator(16, 8, 3), tmp_path / "netG_whole.pth")
    stderr = refused(cli, tmp_path / "netG_whole.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    assert "ExamplesGenerator object, not only tensors" in stderr and "netG.state_dict()" in stderr


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_truncated_file_is_a_one_line_error(cli, tmp_path, keep):
    whole = save_examples(tmp_path, ExamplesGenerator(16, 8, 3)).read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[:int(len(whole) * keep)])
    stderr = refused(cli, tmp_path / "cut.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    assert stderr.startswith(f"error: {tmp_path / 'cut.pth'} is not a readable PyTorch checkpoint")


def test_a_tensor_that_is_no_state_dict_is_refused(cli, tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    stderr = refused(cli, tmp_path / "tensor.pth", "--kind", "gan", "--arch", "pytorch-dcgan")
    assert "holds a Tensor, not a state dict" in stderr and "torch.save(netG.state_dict()" in stderr
