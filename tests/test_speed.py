"""How the training step runs on each device (``latentctl.train.speed``), and that speed never changes results
beyond float rounding; ``--precision fp32`` computes as before, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY, random_digits
from latentctl import store
from latentctl.data.synth_digits import synth_digits
from latentctl.models.classifier import ClassifierConfig
from latentctl.models.dcgan import GANConfig, Generator, NearestUpsampling
from latentctl.train import speed
from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer
from latentctl.train.gan import GANTrainer, ImageDataset, TrainOptions, place_images

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
TINY_FACES = GANConfig(latent_dim=16, num_classes=0, embed_dim=0, image_size=32, channels=3, gen_width=8,
                       disc_width=8, upsample="nearest")


def random_faces(n: int = 128) -> ImageDataset:
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    return ImageDataset(images, None, [], "random-faces")


def random_attributes(train: int, val: int) -> AttributeData:
    """Random 32x32 images with 40 random attributes, ``train`` of them to train on and ``val`` to validate."""
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (train + val, 3, 32, 32), generator=generator, dtype=torch.uint8)
    attributes = (torch.rand(train + val, 40, generator=generator) < 0.3).to(torch.uint8)
    return AttributeData(images[:train], attributes[:train], images[train:], attributes[train:],
                         [f"a{i}" for i in range(40)], 178, {"name": "random"})


def train_faces(tmp_path: Path, **options) -> GANTrainer:
    trainer = GANTrainer(TINY_FACES, TrainOptions(epochs=1, batch_size=32, flip=True, **options), random_faces(),
                         tmp_path / str(options), CPU, kind="gan")
    trainer.train()
    return trainer


def test_auto_on_cuda_is_bf16_channels_last_compiled_with_fused_adam():
    assert speed.resolve("auto", None, CUDA) == speed.StepSettings(
        "bf16", channels_last=True, folded_upsampling=True, compile=True, fused_adam=True)


@pytest.fixture
def no_native_bf16(monkeypatch):
    """A CPU without bf16 instructions (AVX2): ``auto`` computes in float32 there."""
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: False)


def test_auto_on_a_cpu_without_native_bf16_is_float32_channels_last_uncompiled(no_native_bf16):
    assert speed.resolve("auto", None, CPU) == speed.StepSettings(
        "fp32", channels_last=True, folded_upsampling=True, compile=False, fused_adam=False)


def test_auto_on_a_cpu_with_native_bf16_is_bf16_channels_last_uncompiled(monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: True)
    assert speed.resolve("auto", None, CPU) == speed.StepSettings(
        "bf16", channels_last=True, folded_upsampling=True, compile=False, fused_adam=False)
    assert speed.resolve("fp32", None, CPU).precision == "fp32"


def test_native_bf16_is_read_from_pytorchs_cpu_probes(monkeypatch):
    for avx512_bf16, amx, expected in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda value=avx512_bf16: value, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda value=amx: value, raising=False)
        assert speed.cpu_has_native_bf16() is expected


def test_a_pytorch_without_the_cpu_probes_is_taken_to_have_no_native_bf16(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert speed.cpu_has_native_bf16() is False
    assert speed.resolve("auto", None, CPU).precision == "fp32"


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_fp32_is_the_reference_computation_on_every_device(device):
    assert speed.resolve("fp32", None, device) == speed.StepSettings(
        "fp32", channels_last=False, folded_upsampling=False, compile=False, fused_adam=False)


def test_the_compile_flag_overrides_the_device_default():
    assert speed.resolve("auto", True, CPU).compile and not speed.resolve("auto", False, CUDA).compile
    assert speed.resolve("fp32", True, CUDA).compile


def test_an_unknown_precision_is_refused():
    with pytest.raises(Exception, match="precision"):
        TrainOptions(precision="fp16")


def test_folded_nearest_upsampling_is_the_same_function_as_upsampling_then_convolving():
    torch.manual_seed(0)
    layer = NearestUpsampling(6, 5).double()
    features = torch.randn(3, 6, 7, 5, dtype=torch.float64)
    folded = layer(features)
    layer.folded = False
    assert torch.allclose(folded, layer(features), atol=1e-12)


def test_folding_keeps_the_weights_and_their_names():
    generator = Generator(TINY_FACES)
    names = list(generator.state_dict())
    assert list(generator.fold_upsampling(False).state_dict()) == names
    assert any(name.endswith(".1.weight") and generator.state_dict()[name].shape[-1] == 3 for name in names)


def test_the_fast_float32_cpu_step_trains_the_same_gan_as_the_reference_to_rounding(tmp_path, no_native_bf16):
    fast, reference = train_faces(tmp_path), train_faces(tmp_path, precision="fp32")
    assert fast.generator.net[3][1].weight.is_contiguous(memory_format=torch.channels_last)
    assert reference.generator.net[3][1].weight.is_contiguous()
    noise = torch.randn(16, TINY_FACES.latent_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fast_images, reference_images = fast.ema(noise), reference.ema(noise)
    assert not torch.equal(fast_images, reference_images)  # computed differently...
    assert (fast_images - reference_images).abs().max() < 1e-3  # ...to the same result
    assert fast.epochs[-1]["loss_d"] == pytest.approx(reference.epochs[-1]["loss_d"], abs=1e-4)


def test_the_fast_float32_cpu_step_trains_the_same_classifier_as_the_reference_to_rounding(tmp_path,
                                                                                           no_native_bf16):
    data = random_attributes(128, 32)
    models = []
    for precision in ("auto", "fp32"):
        trainer = ClassifierTrainer(ClassifierConfig(image_size=32, width=8), ClassifierOptions(
            epochs=1, batch_size=32, precision=precision), data, tmp_path / precision, CPU)
        trainer.train()
        models.append(trainer.model.eval())
    with torch.no_grad():
        fast, reference = (model(data.val_images.float() / 127.5 - 1) for model in models)
    assert (fast - reference).abs().max() < 1e-3


def test_bf16_autocast_trains_and_is_recorded(tmp_path):
    trainer = train_faces(tmp_path, precision="bf16")
    training = json.loads((trainer.out_dir / store.CONFIG_FILE).read_text())["training"]
    assert training["precision"] == "bf16" and training["step"]["channels_last"] is True
    assert all(torch.isfinite(p).all() for p in trainer.ema.parameters())


def test_the_model_records_how_its_step_ran(cli, tmp_path):
    synth_digits(tmp_path / "digits", n_train=64, n_test=16, seed=0)
    result = cli("train", "cgan", "--data-root", tmp_path / "digits", "--out", tmp_path / "m", "--epochs", "1",
                 "--batch-size", "32", "--gen-width", "8", "--disc-width", "8", "--latent-dim", "16",
                 "--precision", "fp32", "--json")
    assert result.exit_code == 0, result.stderr
    training = json.loads(result.stdout)["training"]
    assert training["precision"] == "fp32" and training["options"]["precision"] == "fp32"
    assert training["step"] == {"channels_last": False, "folded_upsampling": False, "compile": False,
                                "fused_adam": False}
    assert "on cpu (float32 (reference))" in result.stderr


def test_an_unknown_precision_flag_is_a_usage_error(cli, tmp_path):
    result = cli("train", "cgan", "--data-root", tmp_path, "--precision", "fp16")
    assert result.exit_code == 2 and "fp16" in result.stderr


def test_a_run_saved_before_precision_existed_resumes_as_the_reference_computation(tmp_path):
    out = tmp_path / "run"
    GANTrainer(TINY, TrainOptions(epochs=1, batch_size=64), random_digits(), out, CPU).train()
    state_path = out / store.STATE_JSON_FILE
    state = json.loads(state_path.read_text())
    del state["options"]["precision"], state["options"]["compile"]
    state_path.write_text(json.dumps(state))
    resumed = GANTrainer.resume(out, random_digits(), CPU, epochs=2)
    assert resumed.options.precision == "fp32" and not resumed.step_settings.channels_last


def test_a_resumed_fast_run_restores_the_optimiser_state_in_the_weights_layout(tmp_path):
    out = train_faces(tmp_path).out_dir
    resumed = GANTrainer.resume(out, random_faces(), CPU, epochs=2)
    for parameter in resumed.generator.parameters():
        for value in resumed.opt_g.state[parameter].values():
            if value.dim() == 4:
                assert value.stride() == parameter.stride()


def test_a_set_too_big_for_the_gpu_stays_where_it_is_without_a_second_copy(monkeypatch):
    images = torch.zeros(8, 3, 4, 4, dtype=torch.uint8)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (100, 10_000))  # 100 bytes free
    assert place_images(images, CUDA) is images  # batches go over one at a time, through pinned memory


def test_a_run_resumed_on_a_cpu_that_resolves_auto_differently_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: True)
    out = train_faces(tmp_path).out_dir
    assert json.loads((out / store.STATE_JSON_FILE).read_text())["precision"] == "bf16"
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: False)
    warnings: list[str] = []
    resumed = GANTrainer.resume(out, random_faces(), CPU, epochs=2, warn=warnings.append)
    assert resumed.step_settings.precision == "fp32"
    assert any("trained in bf16 and continues in fp32" in warning for warning in warnings)


def test_a_classifier_resumed_where_auto_resolves_the_same_gets_no_precision_warning(tmp_path):
    data = random_attributes(64, 32)
    ClassifierTrainer(ClassifierConfig(image_size=32, width=8), ClassifierOptions(epochs=1, batch_size=32), data,
                      tmp_path / "c", CPU).train()
    warnings: list[str] = []
    ClassifierTrainer.resume(tmp_path / "c", data, CPU, epochs=2, warn=warnings.append)
    assert not any("continues in" in warning for warning in warnings)
