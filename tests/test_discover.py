"""Directions without labels: SeFa and GANSpace on hand-built first layers (the maths), and `directions discover`
and `steer --direction` through the CLI on tiny models (files, JSON, names, errors)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from latentctl import store
from latentctl.data.celeba import CELEBA_ATTRIBUTES
from latentctl.latent.components import (
    DiscoveredDirections,
    find_directions,
    ganspace,
    load_discovered,
    name_directions,
    sefa,
)
from latentctl.latent.discover import COLUMNS
from latentctl.models.classifier import AttributeClassifier, ClassifierConfig
from latentctl.models.dcgan import GANConfig, Generator
from latentctl.models.seed import SeedGenerator, SeedGeneratorConfig

SIZE = 16
FACE = dict(latent_dim=8, num_classes=0, image_size=SIZE, channels=3, gen_width=8, disc_width=8, upsample="nearest")


def unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm()


def toy_generator(**changes) -> Generator:
    torch.manual_seed(0)
    return Generator(GANConfig(**{**FACE, **changes})).eval()


def test_sefa_returns_the_dominant_right_singular_vector_of_the_first_layer():
    generator = toy_generator()
    first = generator.net[0].weight  # (latent 8, channels 32, 2, 2)
    direction = unit(torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 0.0, -1.0, 0.0]))
    pattern = torch.randn(first.shape[1:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # A = 10 * pattern ⊗ direction + a little noise: the direction dominates AᵀA
        first.copy_(10 * direction[:, None, None, None] * pattern + 0.01 * torch.randn_like(first))
    directions, values = sefa(generator.latent_matrix(), k=3)
    assert directions.shape == (3, 8) and values[0] > 100 * values[1]
    assert abs(float(directions[0] @ direction)) > 0.999
    assert torch.allclose(directions @ directions.T, torch.eye(3), atol=1e-5)


def test_sefa_folds_the_batchnorm_scale_into_the_first_layer():
    generator = toy_generator()
    first, norm = generator.net[0], generator.net[1]
    with torch.no_grad():  # noise 0 drives channel 0 (weight 1), noise 1 drives channel 1 (weight 2)
        first.weight.zero_()
        first.weight[0, 0] = 1.0
        first.weight[1, 1] = 2.0
        norm.weight.fill_(1.0)
    top = sefa(generator.latent_matrix(), 1)[0][0]
    assert abs(float(top[1])) > 0.999  # unscaled, the stronger weight wins
    with torch.no_grad():
        norm.running_var[1] = 100.0  # the BatchNorm divides channel 1 by 10: now channel 0 moves more
    top = sefa(generator.latent_matrix(), 1)[0][0]
    assert abs(float(top[0])) > 0.999


@pytest.mark.parametrize("make", [
    lambda: toy_generator(),
    lambda: toy_generator(latent_dim=16, num_classes=10, embed_dim=8, image_size=28, channels=1,
                          upsample="transpose"),
    lambda: SeedGenerator(SeedGeneratorConfig(layout="dcgan-28", latent_dim=12, num_classes=10, image_size=28,
                                              channels=1, hidden_dim=4)).eval(),
], ids=["gan", "cgan", "seed-cgan"])
def test_latent_matrix_is_the_first_layer_and_batchnorm_as_a_linear_map_of_the_noise(make):
    generator = make()
    for module in generator.modules():  # statistics other than the initial ones, so the folding shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 4.0)
            module.running_mean.uniform_(-1, 1)
    first = generator.net[:2] if isinstance(generator, Generator) else generator.gen[0][:2]
    latent_dim = generator.config.latent_dim
    embedding = None if generator.embed is None else generator.label_embedding(torch.tensor([3, 3]))
    noise = torch.randn(2, latent_dim)
    inputs = noise if embedding is None else torch.cat([noise, embedding], 1)
    with torch.no_grad():
        outputs = first(inputs[:, :, None, None]).flatten(1)  # (2, F): the label's part cancels in the difference
    matrix = generator.latent_matrix()
    assert matrix.shape == (outputs.shape[1], latent_dim)  # the noise's columns only
    assert torch.allclose(outputs[0] - outputs[1], matrix @ (noise[0] - noise[1]), atol=1e-4)


def test_ganspace_recovers_the_latent_direction_the_activations_vary_along():
    direction = unit(torch.tensor([0.0, 2.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0]))
    weights = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))

    def features(noise: torch.Tensor) -> torch.Tensor:  # strongly along the direction, weakly along the rest
        return torch.relu(torch.cat([5 * (noise @ direction)[:, None] * torch.ones(1, 6), 0.2 * noise @ weights], 1))

    directions, sd = ganspace(features, 8, k=2, samples=2000)
    assert abs(float(directions[0] @ direction)) > 0.98
    assert directions.norm(dim=1).allclose(torch.ones(2)) and 0.9 < float(sd[0]) < 1.1


def test_ganspace_on_a_generator_whose_first_layer_sees_one_direction_finds_it():
    generator = toy_generator()
    direction = unit(torch.tensor([1.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 2.0]))
    with torch.no_grad():
        pattern = torch.randn(generator.net[0].weight.shape[1:])
        generator.net[0].weight.copy_(direction[:, None, None, None] * pattern)
    found = find_directions(generator, store.ModelConfig(kind="gan", network=generator.config, labels=[],
                                                         normalization={}), "ganspace", 1, 1000)
    assert abs(float(found.directions[0] @ direction)) > 0.99


def test_a_name_walks_the_direction_that_changes_that_attribute_most_towards_it():
    changes = torch.tensor([[0.1, 0.0], [-0.4, 0.1], [0.2, 0.3]])  # (k, A): Smiling, Male
    found = DiscoveredDirections("sefa", torch.eye(3), torch.ones(3), ["Smiling", "Male"], changes)
    assert [found.name(i) for i in range(3)] == ["Smiling", "Smiling", "Male"]
    assert found.resolve("smiling") == (1, -1)  # component 1 lowers Smiling most: walked against itself
    assert found.resolve("Male") == (2, 1) and found.resolve("0") == (0, 1)


class Brightness(torch.nn.Module):
    """A generator whose images (N, 1, 4, 4) get brighter with the first noise coordinate, and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return (self.gain * noise[:, :1]).tanh()[:, :, None, None].expand(-1, 1, 4, 4)


class BrightnessReader(torch.nn.Module):
    """A classifier of three attributes: Bright (strongly), Flat (never changes) and Dark (weakly)."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(4.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.mean(dim=(1, 2, 3))
        return torch.stack([self.gain * mean, torch.zeros_like(mean), -self.gain / 2 * mean], 1)


def test_a_classifier_names_a_direction_by_the_attribute_whose_probability_changes_most_along_it():
    config = SimpleNamespace(latent_dim=4, labels=[], conditioned_on_attributes=False)
    darker = -torch.eye(4)[:2]  # direction 0 lowers noise 0, so it darkens; direction 1 moves noise 1: nothing
    found = DiscoveredDirections("sefa", darker, torch.ones(2))
    named = name_directions(found, Brightness(), config, BrightnessReader(), ["Bright", "Flat", "Dark"],
                            seeds=range(16), span=3.0)
    (first, bright), (second, dark), (third, flat) = named.top(0)  # by the size of the change
    assert (first, second, third) == ("Bright", "Dark", "Flat") and bright < -0.3 and dark > 0.1 and flat == 0
    assert named.changes[1].abs().max() < 1e-6
    assert named.name(0) == "Bright" and named.resolve("bright") == (0, -1)  # walked against itself to brighten


# ------------------------------------------------------------------------------------------ through the CLI

def save_generator(out: Path, **changes) -> Path:
    generator = toy_generator(**changes)
    labels = [str(d) for d in range(10)] if changes.get("num_classes") else []
    store.save_model(out, store.ModelConfig(kind="cgan" if labels else "gan", network=generator.config,
                                            labels=labels, normalization={"mean": [0.5] * generator.config.channels,
                                                                          "std": [0.5] * generator.config.channels}),
                     generator)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("discover-models")
    torch.manual_seed(0)
    config = ClassifierConfig(image_size=SIZE, width=4)
    store.save_model(root / "classifier", store.ModelConfig(
        kind="classifier", network=config, labels=list(CELEBA_ATTRIBUTES),
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3}), AttributeClassifier(config).eval())
    return {"gan": save_generator(root / "gan"), "classifier": root / "classifier"}


def test_discover_writes_a_grid_of_k_rows_and_a_json_of_k_components(cli, models, tmp_path):
    out = tmp_path / "sefa.png"
    result = cli("directions", "discover", "--model", models["gan"], "--k", 5, "--device", "cpu", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["method"] == "sefa" and report["k"] == 5 and len(report["offsets_sd"]) == COLUMNS
    assert [c["index"] for c in report["components"]] == list(range(5))
    assert all(c["name"] is None and c["attributes"] == [] and c["sd"] == 1.0 for c in report["components"])
    assert Path(report["saved"]).is_file() and Path(report["saved"]).parent == models["gan"] / "directions"
    width, height = Image.open(out).size
    assert height > 5 * 2 * (SIZE + 2) and width > COLUMNS * 2 * (SIZE + 2)  # captions around 5 x 7 faces at 2x


def test_discover_with_a_classifier_names_each_component_by_its_attributes(cli, models, tmp_path):
    result = cli("directions", "discover", "--model", models["gan"], "--classifier", models["classifier"],
                 "--method", "ganspace", "--samples", 500, "--k", 3, "--device", "cpu", "--json", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    components = json.loads(result.stdout)["components"]
    assert len(components) == 3
    for component in components:
        assert component["name"] == component["attributes"][0]["attribute"] and len(component["attributes"]) == 3
        assert all(a["attribute"] in CELEBA_ATTRIBUTES and -1 <= a["change"] <= 1 for a in component["attributes"])
    found = load_discovered(models["gan"], "ganspace")
    assert found.changes.shape == (3, len(CELEBA_ATTRIBUTES)) and found.name(0) == components[0]["name"]


def test_steer_direction_walks_a_face_model_component_as_a_strip(cli, models, tmp_path):
    assert cli("directions", "discover", "--model", models["gan"], "--k", 4, "--device", "cpu",
               tmp_path / "d.png").exit_code == 0
    out = tmp_path / "walk.png"
    result = cli("steer", "--model", models["gan"], "--direction", "sefa:0", "--n", 3, "--frames", 5, "--scale", 1,
                 "--device", "cpu", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["direction"]["method"] == "sefa" and report["direction"]["index"] == 0
    assert [face["seed"] for face in report["faces"]] == [0, 1, 2]
    assert [frame["offset"] for frame in report["faces"][0]["frames"]] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert Image.open(out).size == (2 + 5 * (SIZE + 2), 2 + 3 * (SIZE + 2))


def test_steer_direction_on_a_digit_cgan_keeps_each_label_and_moves_the_noise(cli, tiny_model, tmp_path):
    assert cli("directions", "discover", "--model", tiny_model, "--k", 3, "--device", "cpu",
               tmp_path / "digits.png").exit_code == 0
    out = tmp_path / "walk.gif"
    result = cli("steer", "--model", tiny_model, "--direction", "2", "--n", 2, "--frames", 3, "--device", "cpu",
                 "--json", out)
    assert result.exit_code == 0, result.output
    faces = json.loads(result.stdout)["faces"]
    assert [face["label"] for face in faces] == ["0", "1"]
    assert Image.open(out).n_frames == 4  # 3 frames, played forth and back


def test_a_retrained_model_is_not_walked_with_the_directions_of_its_old_weights(cli, tmp_path):
    model = save_generator(tmp_path / "gan")
    assert cli("directions", "discover", "--model", model, "--k", 2, "--device", "cpu",
               tmp_path / "d.png").exit_code == 0
    save_generator(model, gen_width=4)
    result = cli("steer", "--model", model, "--direction", "0", "--device", "cpu", tmp_path / "w.png")
    assert result.exit_code == 1 and "directions discover" in result.output


@pytest.mark.parametrize("args, code, message", [
    (["directions", "discover", "--k", 0], 2, "--k"),
    (["directions", "discover", "--k", 9], 2, "at most 8"),
    (["steer", "--direction", 7], 2, "numbered 0 to 3"),
    (["steer", "--direction", "Smiling"], 2, "no sefa direction is named 'Smiling'"),
    (["steer", "--direction", "ganspace:0"], 1, "no ganspace directions"),
    (["steer", "--direction", "0", "--to", "Male"], 2, "leave out --to"),
    (["steer", "--direction", "0", "--method", "label", "--until", "0.9"], 2, "takes no --method, --until"),
], ids=["k-0", "k-past-latent", "index-past-k", "unknown-name", "not-discovered", "with-to", "with-steering-flags"])
def test_bad_directions_are_refused_in_one_message(cli, tmp_path, args, code, message):
    model = save_generator(tmp_path / "gan")
    assert cli("directions", "discover", "--model", model, "--k", 4, "--device", "cpu",
               tmp_path / "d.png").exit_code == 0
    result = cli(*args, "--model", model, "--device", "cpu", tmp_path / "out.png")
    assert result.exit_code == code
    assert message in " ".join(result.output.replace("│", " ").split()) and "Traceback" not in result.output


def test_steer_direction_on_a_model_never_discovered_says_how_to_discover(cli, tmp_path):
    model = save_generator(tmp_path / "gan")
    result = cli("steer", "--model", model, "--direction", "0", "--device", "cpu", tmp_path / "out.png")
    assert result.exit_code == 1
    assert f"run 'latentctl directions discover --model {model}' first" in result.output
