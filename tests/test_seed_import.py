"""`latentctl models import`: seed-project checkpoints become model folders that compute what the seed did.

The "original code" below is written out independently from the seed notebooks' description (DCGAN
blocks of unpadded transposed convolutions with biases; the 40-attribute classifier), its random state
dicts are saved the way the notebooks saved them, and the imported models must match it to 1e-5.
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

# ------------------------------------------------------------------------- the seed notebooks' networks


class ReferenceGenerator(nn.Module):
    """The seed's generator: noise (N, input_dim) viewed as (N, input_dim, 1, 1), blocks of
    ConvTranspose2d(k, s) + BatchNorm2d + ReLU, the last one ConvTranspose2d + Tanh."""

    def __init__(self, input_dim: int, channels: int, hidden: int, blocks: list[tuple[int, int, int]]) -> None:
        super().__init__()
        self.input_dim = input_dim
        layers = []
        width = input_dim
        for number, (out_factor, kernel, stride) in enumerate(blocks):
            out = hidden * out_factor if out_factor else channels
            if number < len(blocks) - 1:
                layers.append(nn.Sequential(nn.ConvTranspose2d(width, out, kernel, stride), nn.BatchNorm2d(out),
                                            nn.ReLU(inplace=True)))
            else:
                layers.append(nn.Sequential(nn.ConvTranspose2d(width, out, kernel, stride), nn.Tanh()))
            width = out
        self.gen = nn.Sequential(*layers)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.gen(noise.view(len(noise), self.input_dim, 1, 1))


def celeba_generator(z_dim: int = 64, hidden: int = 16) -> ReferenceGenerator:
    """The CelebA steering notebook's Generator(z_dim=64): 1 -> 3 -> 7 -> 15 -> 31 -> 64."""
    return ReferenceGenerator(z_dim, 3, hidden, [(8, 3, 2), (4, 3, 2), (2, 3, 2), (1, 3, 2), (0, 4, 2)])


def mnist_cgan_generator(z_dim: int = 64, classes: int = 10, hidden: int = 16) -> ReferenceGenerator:
    """The conditional MNIST notebook's Generator(input_dim=z_dim + 10, im_chan=1): 1 -> 3 -> 6 -> 13 -> 28."""
    return ReferenceGenerator(z_dim + classes, 1, hidden, [(4, 3, 2), (2, 4, 1), (1, 3, 2), (0, 4, 2)])


class ReferenceClassifier(nn.Module):
    """The seed's Classifier(n_classes=40): Conv2d(4, s) + BatchNorm2d + LeakyReLU(0.2) blocks, strides 2, 2, 3,
    then a last Conv2d(4, 2) to (N, 40, 1, 1), viewed as (N, 40)."""

    def __init__(self, classes: int = 40, hidden: int = 8) -> None:
        super().__init__()

        def block(width_in: int, width_out: int, stride: int = 2, last: bool = False) -> nn.Sequential:
            if last:
                return nn.Sequential(nn.Conv2d(width_in, width_out, 4, stride))
            return nn.Sequential(nn.Conv2d(width_in, width_out, 4, stride), nn.BatchNorm2d(width_out),
                                 nn.LeakyReLU(0.2, inplace=True))

        self.classifier = nn.Sequential(block(3, hidden), block(hidden, hidden * 2),
                                        block(hidden * 2, hidden * 4, stride=3), block(hidden * 4, classes, last=True))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        prediction = self.classifier(image)
        return prediction.view(len(prediction), -1)


def trained_looking(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters, as training would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                set_batchnorm(layer, generator, 1234)
    return module.eval()


def save_seed(tmp_path: Path, name: str, key: str, module: nn.Module) -> Path:
    path = tmp_path / name
    torch.save({key: module.state_dict()}, path)
    return path


# ------------------------------------------------------------------------------------------ same outputs


def test_imported_celeba_generator_draws_exactly_what_the_seed_generator_draws(cli, tmp_path):
    reference = trained_looking(celeba_generator())
    report = imported(cli, save_seed(tmp_path, "pretrained_celeba.pth", "gen", reference), "--kind", "gan")
    assert report["arch"] == "dcgan-64" and report["name"] == "pretrained_celeba"
    generator, config = store.load_model(Path(report["model"]), "gan")
    assert (config.image_size, config.channels, config.latent_dim, config.labels) == (64, 3, 64, [])
    noise = torch.randn(5, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(noise)
        assert expected.shape == (5, 3, 64, 64)
        torch.testing.assert_close(generator(noise), expected, atol=1e-5, rtol=0)


def test_sample_draws_an_imported_face_generator_like_the_seed_does(cli, tmp_path):
    from latentctl.latent.sampling import noise_for_seeds

    reference = trained_looking(celeba_generator())
    imported(cli, save_seed(tmp_path, "faces.pth", "gen", reference), "--kind", "gan")
    result = cli("sample", "--model", "faces", "--n", "2", "--seed", "5", "--individual", tmp_path / "out")
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        expected = reference(noise_for_seeds([5, 6], 64))  # (2, 3, 64, 64) in [-1, 1]
    for index, path in enumerate(sorted((tmp_path / "out").iterdir())):
        pixels = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1).float()
        assert (pixels - expected[index].add(1).mul(127.5)).abs().max() <= 1.0  # up to 8-bit rounding


def test_imported_conditional_generator_reads_one_hot_labels_after_the_noise(cli, tmp_path):
    reference = trained_looking(mnist_cgan_generator(), seed=1)
    report = imported(cli, save_seed(tmp_path, "cgan.pth", "gen", reference), "--kind", "cgan")
    assert report["arch"] == "dcgan-28"
    generator, config = store.load_model(Path(report["model"]), "cgan")
    assert (config.image_size, config.channels, config.latent_dim) == (28, 1, 64)
    assert config.labels == [str(digit) for digit in range(10)]
    noise = torch.randn(10, 64, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(10)
    with torch.no_grad():
        expected = reference(torch.cat([noise, nn.functional.one_hot(labels, 10).float()], dim=1))
        torch.testing.assert_close(generator(noise, labels), expected, atol=1e-5, rtol=0)


def test_sample_digit_and_a_morph_work_on_an_imported_conditional_generator(cli, tmp_path):
    reference = trained_looking(mnist_cgan_generator())
    imported(cli, save_seed(tmp_path, "cgan.pth", "gen", reference), "--kind", "cgan")
    assert cli("sample", "--model", "cgan", "--digit", "3", "--n", "4", tmp_path / "threes.png").exit_code == 0
    result = cli("interpolate", "--model", "cgan", "--digit", "1", "--to-digit", "7", "--frames", "3",
                 tmp_path / "morph.png")
    assert result.exit_code == 0, result.output


def test_imported_classifier_gives_the_seed_classifiers_logits(cli, tmp_path):
    from latentctl.data.celeba import CELEBA_ATTRIBUTES

    reference = trained_looking(ReferenceClassifier(), seed=3)
    report = imported(cli, save_seed(tmp_path, "pretrained_classifier.pth", "classifier", reference),
                      "--kind", "classifier")
    assert report["arch"] == "classifier-64"
    classifier, config = store.load_model(Path(report["model"]), "classifier")
    assert config.labels == list(CELEBA_ATTRIBUTES) and config.image_size == 64
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(classifier(images), reference(images), atol=1e-5, rtol=0)


def test_classify_preprocesses_like_the_seed_and_gives_its_probabilities(cli, tmp_path):
    reference = trained_looking(ReferenceClassifier(), seed=5)
    imported(cli, save_seed(tmp_path, "attributes.pth", "classifier", reference), "--kind", "classifier")
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "face.png")  # at 64x64 the seed's Resize + CenterCrop change nothing
    result = cli("classify", "--classifier", "attributes", tmp_path / "face.png", "--json")
    assert result.exit_code == 0, result.output
    probabilities = json.loads(result.stdout)["images"][0]["probabilities"]
    seed_input = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255  # ToTensor()
    with torch.no_grad():  # then Normalize((0.5,) * 3, (0.5,) * 3)
        expected = torch.sigmoid(reference((seed_input - 0.5) / 0.5))[0]
    assert list(probabilities) == json.loads((tmp_path / "home/models/attributes/config.json").read_text())["labels"]
    assert np.allclose(list(probabilities.values()), expected.tolist(), atol=1e-4)  # rounded to 4 places



@pytest.mark.parametrize("shape", [(218, 178), (150, 260)])
def test_classify_reads_a_photo_exactly_as_the_seeds_torchvision_transform(cli, tmp_path, shape):
    from torchvision import transforms

    reference = trained_looking(ReferenceClassifier(), seed=6)
    imported(cli, save_seed(tmp_path, "attributes.pth", "classifier", reference), "--kind", "classifier")
    pixels = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")  # a CelebA-sized (178x218) and a wide photo
    result = cli("classify", "--classifier", "attributes", tmp_path / "photo.png", "--json")
    assert result.exit_code == 0, result.output
    probabilities = json.loads(result.stdout)["images"][0]["probabilities"]
    seed_transform = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64), transforms.ToTensor(),
                                         transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    with torch.no_grad():
        expected = torch.sigmoid(reference(seed_transform(Image.open(tmp_path / "photo.png").convert("RGB"))[None]))
    assert np.allclose(list(probabilities.values()), expected[0].tolist(), atol=1e-4)

# ------------------------------------------------------------------------------- what the file may hold


def test_a_bare_state_dict_and_a_data_parallel_prefix_import_too(cli, tmp_path):
    reference = trained_looking(celeba_generator())
    torch.save({f"module.{name}": value for name, value in reference.state_dict().items()}, tmp_path / "bare.pth")
    assert imported(cli, tmp_path / "bare.pth", "--kind", "gan")["arch"] == "dcgan-64"


def test_a_file_that_needs_full_unpickling_is_refused_without_unpickling_it(cli, tmp_path):
    Tripwire.unpickled = False
    path = tmp_path / "with-object.pth"
    torch.save({"gen": celeba_generator().state_dict(), "extra": Tripwire()}, path)
    result = cli("models", "import", path, "--kind", "gan")
    assert result.exit_code == 1
    assert "Tripwire object, not only tensors: loading it needs full unpickling" in result.stderr
    assert "Traceback" not in result.output
    assert not Tripwire.unpickled
    assert not (tmp_path / "home/models/with-object").exists()


def test_a_pickled_network_is_refused(cli, tmp_path):
    torch.save(celeba_generator(), tmp_path / "whole.pth")
    result = cli("models", "import", tmp_path / "whole.pth", "--kind", "gan")
    assert result.exit_code == 1
    assert "needs full unpickling" in result.stderr and "state_dict()" in result.stderr


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_truncated_file_is_a_one_line_error(cli, tmp_path, keep):
    whole = save_seed(tmp_path, "whole.pth", "gen", celeba_generator()).read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[:int(len(whole) * keep)])
    result = cli("models", "import", tmp_path / "cut.pth", "--kind", "gan")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'cut.pth'} is not a readable PyTorch checkpoint")
    assert len(result.stderr.strip().splitlines()) == 2


@pytest.mark.parametrize("content", [b"netG after 25 epochs on LSUN bedrooms\n", bytes(range(7, 256)) * 4])
def test_a_file_that_is_no_checkpoint_is_not_taken_for_pickled_objects(cli, tmp_path, content):
    (tmp_path / "notes.pth").write_bytes(content)
    result = cli("models", "import", tmp_path / "notes.pth", "--kind", "gan")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'notes.pth'} is not a readable PyTorch checkpoint")
    assert "unpickling" not in result.stderr and len(result.stderr.strip().splitlines()) == 2


def test_a_generator_imported_as_a_classifier_is_refused_with_the_right_kind(cli, tmp_path):
    path = save_seed(tmp_path, "gen.pth", "gen", celeba_generator())
    result = cli("models", "import", path, "--kind", "classifier")
    assert result.exit_code == 1
    assert "holds a generator, not a classifier" in result.stderr and "--kind gan" in result.stderr


def test_a_classifier_imported_as_a_generator_is_refused_with_the_right_kind(cli, tmp_path):
    path = save_seed(tmp_path, "classifier.pth", "classifier", ReferenceClassifier())
    result = cli("models", "import", path, "--kind", "gan")
    assert result.exit_code == 1
    assert "holds a classifier, not a gan" in result.stderr and "--kind classifier" in result.stderr


def test_an_explicit_arch_that_does_not_fit_names_the_mismatching_tensors(cli, tmp_path):
    path = save_seed(tmp_path, "gen.pth", "gen", celeba_generator())
    result = cli("models", "import", path, "--kind", "gan", "--arch", "dcgan-28")
    assert result.exit_code == 1
    assert "does not match the seed dcgan-28 architecture" in result.stderr


def test_a_wrongly_shaped_tensor_is_named(cli, tmp_path):
    state = celeba_generator().state_dict()
    state["gen.1.1.running_var"] = torch.ones(7)
    torch.save({"gen": state}, tmp_path / "bad.pth")
    result = cli("models", "import", tmp_path / "bad.pth", "--kind", "gan")
    assert result.exit_code == 1
    assert "wrong shape gen.1.1.running_var (7,) != (64,)" in result.stderr


def test_an_unknown_layout_is_refused_with_the_known_ones(cli, tmp_path):
    other = ReferenceGenerator(64, 3, 8, [(4, 4, 1), (2, 4, 2), (1, 4, 2), (0, 4, 2)])  # pytorch/examples-like
    result = cli("models", "import", save_seed(tmp_path, "other.pth", "gen", other), "--kind", "gan")
    assert result.exit_code == 1
    assert "kernels 4, 4, 4, 4, which is no seed generator" in result.stderr


def test_an_existing_model_is_replaced_only_with_force(cli, tmp_path):
    path = save_seed(tmp_path, "gen.pth", "gen", celeba_generator())
    imported(cli, path, "--kind", "gan")
    again = cli("models", "import", path, "--kind", "gan")
    assert again.exit_code == 1 and "already holds a model" in again.stderr
    assert imported(cli, path, "--kind", "gan", "--force")["name"] == "gen"


def test_an_import_elsewhere_is_registered_under_its_folder_name(cli, tmp_path):
    path = save_seed(tmp_path, "gen.pth", "gen", celeba_generator())
    report = imported(cli, path, "--kind", "gan", "--out", tmp_path / "seed-faces")
    assert report["name"] == "seed-faces"
    listing = json.loads(cli("models", "list", "--json").stdout)["models"]
    assert [(m["name"], m["source"], m["kind"], m["epochs"]) for m in listing] == \
        [("seed-faces", "imported", "gan", None)]
    config = json.loads((tmp_path / "seed-faces/config.json").read_text())
    assert config["training"]["imported"]["file"] == "gen.pth"  # the file's name only, never a local path


def test_an_imported_model_whose_config_was_edited_to_contradict_itself_is_refused(cli, tmp_path):
    report = imported(cli, save_seed(tmp_path, "gen.pth", "gen", celeba_generator()), "--kind", "gan")
    config_path = Path(report["model"]) / "config.json"
    config = json.loads(config_path.read_text())
    config["latent_dim"] = 100
    config_path.write_text(json.dumps(config))
    result = cli("sample", "--model", "gen", tmp_path / "x.png")
    assert result.exit_code == 1 and "contradicts itself" in result.stderr
