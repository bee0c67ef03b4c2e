"""The model folder format: exact round trips, strict validation, atomic writes, pickle-free state."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from latentctl import files, store
from latentctl.errors import LatentctlError
from latentctl.latent.sampling import generate, noise_for_seeds
from latentctl.models.configs import ARCHITECTURES


def copy_model(source, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(source, target)
    return target


def test_a_loaded_model_generates_exactly_what_the_trained_one_did(tiny_model):
    generator, config = store.load_model(tiny_model, "cgan")
    again, _ = store.load_model(tiny_model, "cgan")
    noise, labels = noise_for_seeds(range(8), config.latent_dim), torch.arange(8)
    assert torch.equal(generate(generator, noise, labels), generate(again, noise, labels))


def test_config_records_what_a_user_needs(tiny_model):
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["kind"] == "cgan" and config["format"] == "latentctl.model"
    assert config["labels"] == [str(d) for d in range(10)]
    assert config["image_size"] == 28 and config["channels"] == 1 and config["latent_dim"] == 16
    assert config["normalization"] == {"mean": [0.5], "std": [0.5]}
    assert config["training"]["epochs"] == 1 and config["training"]["dataset"]["images"] == 256
    assert config["latentctl_version"]


def test_weights_are_plain_safetensors_without_pickle(tiny_model):
    from safetensors import safe_open

    with safe_open(str(tiny_model / "model.safetensors"), "pt") as weights:
        assert "net.0.weight" in set(weights.keys())
    for path in tiny_model.rglob("*"):
        assert path.suffix not in (".pt", ".pth", ".pkl", ".bin")


def test_a_model_of_another_kind_is_refused(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    config = json.loads((model / "config.json").read_text())
    config["kind"] = "gan"
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(LatentctlError, match=r"holds an unconditional GAN \(gan\), this command needs a "
                                             r"conditional GAN \(cgan\)"):
        store.load_model(model, "cgan")


def test_a_missing_tensor_is_refused(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    tensors = files.load_tensors(model / "model.safetensors")
    del tensors["net.0.weight"]
    files.save_tensors(model / "model.safetensors", tensors)
    with pytest.raises(LatentctlError, match="missing net.0.weight"):
        store.load_model(model, "cgan")


def test_a_tensor_of_the_wrong_shape_is_refused(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    tensors = files.load_tensors(model / "model.safetensors")
    tensors["embed.weight"] = torch.zeros(11, 8)
    files.save_tensors(model / "model.safetensors", tensors)
    with pytest.raises(LatentctlError, match=r"wrong shape embed.weight \(11, 8\) != \(10, 8\)"):
        store.load_model(model, "cgan")


def test_a_truncated_weights_file_is_reported_as_corrupted(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LatentctlError, match="corrupted"):
        store.load_model(model, "cgan")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("latent_dim"), "\"latent_dim\" must be a int"),
    (lambda c: c.update(kind="vae"), "unknown kind 'vae'"),
    (lambda c: c.update(format_version=99), "uses model format version 99"),
    (lambda c: c.update(normalization={"mean": [0.5], "std": [0]}), "std\" must be positive"),
    (lambda c: c["architecture"].update(image_size=30), "invalid architecture"),
    (lambda c: c.update(labels=["a", "b"]), "contradicts itself"),
    (lambda c: c["architecture"].update(name="vae"), "invalid architecture (unknown name 'vae'"),
])
def test_an_invalid_config_is_refused_with_the_reason(tiny_model, tmp_path, edit, message):
    model = copy_model(tiny_model, tmp_path)
    config = json.loads((model / "config.json").read_text())
    edit(config)
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(LatentctlError, match=message.replace("(", r"\(")):
        store.load_model(model, "cgan")


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_registered_architecture_saves_and_loads_back_exactly(name, tmp_path):
    network = ARCHITECTURES[name]()
    labels = [str(index) for index in range(network.num_labels)]
    config = store.ModelConfig(kind=network.kinds[0], network=network, labels=labels,
                               normalization={"mean": [0.5] * network.channels, "std": [0.5] * network.channels})
    module = store.build_network(network)
    store.save_model(tmp_path, config, module)
    loaded, again = store.load_model(tmp_path, network.kinds[0])
    assert again == config and type(loaded) is type(module)
    assert json.loads((tmp_path / "config.json").read_text()) == config.to_json()
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in module.state_dict().items())


def test_unparsable_config_json_is_reported(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    (model / "config.json").write_text("{not json")
    with pytest.raises(LatentctlError, match="not valid JSON"):
        store.load_model(model, "cgan")


def test_a_failed_write_leaves_the_previous_file_intact_and_no_temporary_behind(tmp_path):
    target = tmp_path / "config.json"
    files.write_json(target, {"version": 1})
    with pytest.raises(OSError), files.atomic_path(target) as temporary:
        temporary.write_text("{half")
        raise OSError(28, "No space left on device")
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_optimizer_state_round_trips_through_tensors_and_json():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors, document = store.optimizer_to_tensors(optimizer, "opt")
    restored = torch.optim.Adam(model.parameters(), lr=1.0)
    store.optimizer_from_tensors(restored, tensors, json.loads(json.dumps(document)), "opt")
    original, copy = optimizer.state_dict(), restored.state_dict()
    assert copy["param_groups"] == original["param_groups"]
    for index, entries in original["state"].items():
        for name, value in entries.items():
            assert torch.equal(copy["state"][index][name], value)


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    from latentctl.files import write_json

    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_the_same_tensors_give_the_same_file_bytes_in_every_process(tmp_path):
    """safetensors orders the metadata as a per-process hash map does; latentctl's files do not depend on it."""
    import subprocess
    import sys

    script = ("import sys, torch; from pathlib import Path; from latentctl import files; "
              "files.save_tensors(Path(sys.argv[1]), {'b': torch.arange(6.0), 'a': torch.ones(2, 3)}, "
              "{key: key * 3 for key in ('kind', 'format', 'epoch', 'seed', 'size', 'labels', 'source')})")
    written = []
    for run in range(4):
        path = tmp_path / f"run{run}.safetensors"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
        written.append(path.read_bytes())
    assert len(set(written)) == 1
    loaded = files.load_tensors(tmp_path / "run0.safetensors")
    assert torch.equal(loaded["b"], torch.arange(6.0)) and torch.equal(loaded["a"], torch.ones(2, 3))
    length = int.from_bytes(written[0][:8], "little")
    metadata = json.loads(written[0][8:8 + length])["__metadata__"]
    assert list(metadata) == sorted(metadata) and metadata["kind"] == "kindkindkind"
