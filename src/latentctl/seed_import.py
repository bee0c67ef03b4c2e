"""Importing ``.pth`` checkpoints of the seed projects, and of pytorch/examples' DCGAN, as latentctl model folders.

The seed notebooks saved pickled state dicts (``{"gen": state_dict}``, ``{"classifier": state_dict}``);
pytorch/examples' ``dcgan/main.py`` saves its generator's bare state dict (``netG_epoch_N.pth``, tensors
``main.N.*``). An import reads them with ``torch.load(weights_only=True)`` only (unpickling anything else
could run code), finds the architecture (models.seed, models.pytorch_dcgan) from the tensors' names and
shapes, checks every tensor against it, and writes a normal model folder that every command uses like any
other.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentctl import files, paths, registry, store
from latentctl.errors import LatentctlError, first_line
from latentctl.models import configs

# --arch values: the seed layouts (latentctl.models.seed) and pytorch/examples' DCGAN generator
# (latentctl.models.pytorch_dcgan), by the kind of network they are
PYTORCH_DCGAN = configs.PytorchDCGANConfig.architecture
GENERATOR_ARCHS = ("dcgan-64", "dcgan-28", PYTORCH_DCGAN)
CLASSIFIER_ARCHS = ("classifier-64",)
ARCHS = GENERATOR_ARCHS + CLASSIFIER_ARCHS
IMPORT_KINDS = ("gan", "cgan", "classifier")
SEED_DIGIT_CLASSES = 10  # the conditional seed generator's one-hot labels: MNIST's digits
PREFIXES = {"gan": "gen", "cgan": "gen", "classifier": "classifier"}  # the seed's attribute names
CONTAINER_KEYS = {"gan": ("gen", "generator"), "cgan": ("gen", "generator"), "classifier": ("classifier",)}
# The seed trained its classifier on torchvision's Resize(64) + CenterCrop(64) of CelebA's aligned images,
# which keeps the full 178-pixel width; then ToTensor() + Normalize(0.5, 0.5), i.e. x / 127.5 - 1.
SEED_PREPROCESSING = {"size": 64, "crop": 178, "resize": "bilinear", "pixels": "x / 127.5 - 1",
                      "seed": "Resize(64), CenterCrop(64), ToTensor(), Normalize((0.5,) * 3, (0.5,) * 3)"}
PYTORCH_DCGAN_DISCRIMINATOR_LAYERS = (0, 2, 3, 5, 6, 8, 9, 11)  # the N of netD's main.N.* (netG's: 0, 1, 3, ...)


def pytorch_dcgan_preprocessing(channels: int) -> dict[str, Any]:
    """How pytorch/examples' dcgan prepared the images a ``channels``-channel generator learned to draw."""
    # an image folder (also lsun, imagenet, lfw) as Resize(64), CenterCrop(64): the short side scaled to 64,
    # the centred square kept; cifar10 and mnist are square, where the crop keeps everything
    half = "(0.5,)" if channels == 1 else f"(0.5,) * {channels}"
    return {"size": configs.PYTORCH_DCGAN_IMAGE_SIZE, "resize": "bilinear", "pixels": "x / 127.5 - 1",
            "pytorch_examples": f"Resize(64), CenterCrop(64), ToTensor(), Normalize({half}, {half})"}


@dataclass
class Imported:
    """A seed checkpoint written as a model folder."""

    file: Path  # the checkpoint, as given
    name: str  # under which the registry knows it
    path: Path
    kind: str
    arch: str
    config: store.ModelConfig
    tensors: int

    @property
    def origin(self) -> str:
        """Whose network it is: "seed dcgan-64", "pytorch/examples' DCGAN"."""
        return "pytorch/examples' DCGAN" if self.arch == PYTORCH_DCGAN else f"seed {self.arch}"

    @property
    def description(self) -> str:
        """What the model is, in words: "a 40-attribute classifier of 64x64 images", "a generator of ..."."""
        config = self.config
        if config.kind == "classifier":
            return f"a {len(config.labels)}-attribute classifier of {config.image_size}x{config.image_size} images"
        return (f"a generator of {config.image_size}x{config.image_size}x{config.channels} images from "
                f"{config.latent_dim}-d noise" + (f" and {len(config.labels)} one-hot labels" if config.labels else ""))

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.file), "name": self.name, "model": str(self.path), "kind": self.kind,
                "arch": self.arch, "tensors": self.tensors, "config": self.config.to_json()}


def import_checkpoint(file: Path, kind: str, arch: str | None = None, out: Path | None = None,
                      force: bool = False, num_classes: int = SEED_DIGIT_CLASSES) -> Imported:
    """Import a ``.pth`` file of ``kind`` (gan, cgan, classifier) as a model folder ``out``.

    ``arch`` is one of ARCHS, detected when None: a seed layout, or pytorch/examples' DCGAN generator
    (``pytorch-dcgan``, a bare state dict of ``main.N.*`` tensors, kind gan). ``out`` defaults to
    ``$LATENTCTL_HOME/models/<file name without suffix>``; an existing model there is replaced only with
    ``force``. A conditional generator reads ``num_classes`` one-hot labels after its
    noise (the seed's MNIST cGAN: 10). The folder is registered under its name.
    """
    if kind not in IMPORT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(IMPORT_KINDS)}, got {kind!r}")
    file = Path(file)
    content = read_checkpoint(file)
    if arch == PYTORCH_DCGAN or (arch is None and _names_main(content)):
        arch = PYTORCH_DCGAN
        tensors = pytorch_dcgan_state_dict(content, kind, file)
        module, config = build_pytorch_dcgan(tensors, file)
    else:
        tensors = state_dict_of(content, kind, file)
        arch = arch or detect_arch(tensors, kind, file)
        module, config = build(tensors, kind, arch, file, num_classes)
    out = Path(out) if out is not None else paths.model_dir(_folder_name(file))
    if (out / store.CONFIG_FILE).exists() and not force:
        raise LatentctlError(f"{out} already holds a model", hint="pass --force to replace it, or --out elsewhere")
    if out.exists() and not out.is_dir():
        raise LatentctlError(f"{out} is a file", hint="--out names the model folder to write")
    config.training = {"imported": {"file": file.name, "sha256": files.file_sha256(file), "arch": arch,
                                    "tensors": len(tensors)}}
    if kind == "classifier":
        config.training["preprocessing"] = dict(SEED_PREPROCESSING)
    elif arch == PYTORCH_DCGAN:  # what inverting a photo into its noise needs
        config.training["preprocessing"] = pytorch_dcgan_preprocessing(config.channels)
    store.save_model(out, config, module)
    name = registry.register(out, "imported")
    return Imported(file, name, out, kind, arch, config, len(tensors))


def read_checkpoint(file: Path) -> Any:
    """Return what a ``.pth`` file holds, read with ``torch.load(weights_only=True)`` only."""
    import torch

    if not file.is_file():
        raise LatentctlError(f"{file} does not exist" if not file.exists() else f"{file} is not a file",
                             hint="give the path of a .pth file saved by the seed notebooks")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported operand" in str(error):  # not a pickle at all: bytes that are no opcode
            raise LatentctlError(f"{file} is not a readable PyTorch checkpoint (neither a zip archive nor a pickle)",
                                 hint="it is corrupted, or not a .pth file: copy it again") from None
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"a {found[1]} object" if found else "Python objects"
        raise LatentctlError(f"{file} holds {what}, not only tensors: loading it needs full unpickling, which "
                             "can run any code, so latentctl does not do it",
                             hint="where the file came from, load it and save only the weights, e.g. "
                                  "torch.save({'gen': gen.state_dict()}, 'gen.pth') or "
                                  "torch.save(netG.state_dict(), 'netG.pth')") from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        reason = first_line(error, 160).split(". ")[0]
        raise LatentctlError(f"{file} is not a readable PyTorch checkpoint ({reason or type(error).__name__})",
                             hint="it is truncated or corrupted, or not a .pth file: copy it again") from None


def state_dict_of(content: Any, kind: str, file: Path) -> dict[str, Any]:
    """Return the state dict in a checkpoint's content, named as the seed's module names it (``gen.0.0.weight``)."""
    import torch

    if not isinstance(content, dict):
        raise LatentctlError(f"{file} holds a {type(content).__name__}, not a state dict",
                             hint="the seed saved dicts such as {'gen': state_dict}")
    other = "classifier" if kind != "classifier" else "gen"
    for key in CONTAINER_KEYS[kind]:
        if isinstance(content.get(key), dict):
            content = content[key]
            break
    else:
        if isinstance(content.get(other), dict):
            raise _wrong_kind(file, kind, _kind_of_prefix(other))
    tensors = {str(name).removeprefix("module."): value for name, value in content.items()}
    if not tensors or not all(isinstance(value, torch.Tensor) for value in tensors.values()):
        keys = ", ".join(map(str, list(content)[:5]))
        raise LatentctlError(f"{file} holds no state dict of a {kind} (its keys: {keys or 'none'})",
                             hint="the seed saved {'gen': gen.state_dict()} and {'classifier': "
                                  "classifier.state_dict()}")
    prefix = PREFIXES[kind]
    if all(name.split(".")[0].isdigit() for name in tensors):  # saved from the Sequential itself
        tensors = {f"{prefix}.{name}": value for name, value in tensors.items()}
    prefixes = {name.split(".")[0] for name in tensors}
    if prefixes != {prefix}:
        seed_prefix = next((p for p in prefixes if p in ("gen", "classifier")), None)
        if seed_prefix is not None and seed_prefix != prefix:
            raise _wrong_kind(file, kind, _kind_of_prefix(seed_prefix))
        raise LatentctlError(f"{file} does not hold a seed {kind}: its tensors are named "
                             f"{', '.join(sorted(prefixes)[:4])}.*, the seed's {prefix}.*",
                             hint=f"pytorch/examples' DCGAN names its tensors main.*: --arch {PYTORCH_DCGAN}"
                             if prefixes == {"main"} else "only checkpoints of the seed notebooks' networks and "
                             f"of pytorch/examples' DCGAN generator (--arch {PYTORCH_DCGAN}) can be imported")
    return tensors


def detect_arch(tensors: dict[str, Any], kind: str, file: Path) -> str:
    """Return the seed layout whose kernel sizes the checkpoint's convolutions have."""
    layouts = configs.CLASSIFIER_LAYOUTS if kind == "classifier" else configs.GENERATOR_LAYOUTS
    kernels = tuple(int(weight.shape[-1]) for weight in _convolution_weights(tensors, PREFIXES[kind]))
    for name, layout in layouts.items():
        if kernels == tuple(kernel for _, kernel, _ in layout):
            return name
    known = "; ".join(f"{name}: {len(layout)} layers, kernels {', '.join(str(k) for _, k, _ in layout)}"
                      for name, layout in layouts.items())
    raise LatentctlError(f"{file} has {len(kernels)} convolutions with kernels {', '.join(map(str, kernels))}, "
                         f"which is no seed {'classifier' if kind == 'classifier' else 'generator'} ({known})",
                         hint="only checkpoints of the seed notebooks' networks can be imported")


def build(tensors: dict[str, Any], kind: str, arch: str, file: Path,
          num_classes: int = SEED_DIGIT_CLASSES) -> tuple[Any, store.ModelConfig]:
    """Return the seed network of ``arch`` holding ``tensors`` (each checked by name and shape), and its config."""
    from latentctl.data.celeba import CELEBA_ATTRIBUTES

    if (arch in CLASSIFIER_ARCHS) != (kind == "classifier"):
        raise LatentctlError(f"--arch {arch} is a {'classifier' if arch in CLASSIFIER_ARCHS else 'generator'}, "
                             f"not a {kind}", hint=f"for a {kind}, pass one of "
                             f"{', '.join(CLASSIFIER_ARCHS if kind == 'classifier' else GENERATOR_ARCHS)}")
    weights = _convolution_weights(tensors, PREFIXES[kind])
    if not weights:
        raise LatentctlError(f"{file} has no convolution weights {PREFIXES[kind]}.N.0.weight",
                             hint="only checkpoints of the seed notebooks' networks can be imported")
    first, last = weights[0].shape, weights[-1].shape
    try:
        if kind == "classifier":
            network: configs.NetworkConfig = configs.SeedClassifierConfig(
                layout=arch, image_size=configs.CLASSIFIER_IMAGE_SIZES[arch], channels=int(first[1]),
                num_attributes=int(last[0]), hidden_dim=int(first[0]) // configs.CLASSIFIER_LAYOUTS[arch][0][0])
            labels = (list(CELEBA_ATTRIBUTES) if network.num_labels == len(CELEBA_ATTRIBUTES)
                      else [str(index) for index in range(network.num_labels)])
        else:
            classes = num_classes if kind == "cgan" else 0
            inputs = int(first[0])  # ConvTranspose2d weights are (in, out, k, k)
            if inputs <= classes:
                raise LatentctlError(f"{file}'s generator reads {inputs} inputs, too few for noise and "
                                     f"{classes} one-hot labels", hint="is it a conditional generator? try --kind gan")
            network = configs.SeedGeneratorConfig(
                layout=arch, latent_dim=inputs - classes, num_classes=classes,
                image_size=configs.generator_output_size(arch), channels=int(last[1]),
                hidden_dim=int(first[1]) // configs.GENERATOR_LAYOUTS[arch][0][0])
            labels = [str(label) for label in range(classes)]
    except ValueError as error:
        raise LatentctlError(f"{file} does not fit the seed {arch} architecture ({error})",
                             hint="let latentctl detect the architecture: leave out --arch") from None
    module = _checked_network(network, tensors, f"{file} does not match the seed {arch} architecture",
                              "let latentctl detect the architecture (leave out --arch), or check --kind")
    config = store.ModelConfig(kind=kind, network=network, labels=labels,
                               normalization={"mean": [0.5] * network.channels, "std": [0.5] * network.channels})
    return module.eval(), config


def pytorch_dcgan_state_dict(content: Any, kind: str, file: Path) -> dict[str, Any]:
    """Return the state dict of pytorch/examples' DCGAN generator a checkpoint holds (``main.N.*`` tensors,
    a ``module.`` prefix dropped, a missing BatchNorm ``num_batches_tracked`` filled with 0)."""
    import torch

    hint = "pytorch/examples' dcgan/main.py saves netG_epoch_N.pth, torch.save(netG.state_dict(), ...): import that"
    if not isinstance(content, dict):
        raise LatentctlError(f"{file} holds a {type(content).__name__}, not a state dict", hint=hint)
    tensors = {str(name).removeprefix("module."): value for name, value in content.items()}
    if not tensors or not all(isinstance(value, torch.Tensor) for value in tensors.values()):
        seed = next((key for key in CONTAINER_KEYS["gan"] + CONTAINER_KEYS["classifier"]
                     if isinstance(content.get(key), dict)), None)
        if seed is not None:
            raise LatentctlError(f"{file} holds a seed notebook's checkpoint ({{'{seed}': state_dict}}), not "
                                 "pytorch/examples' DCGAN generator", hint="leave out --arch: it is detected")
        keys = ", ".join(map(str, list(content)[:5]))
        raise LatentctlError(f"{file} holds no state dict of a generator (its keys: {keys or 'none'})", hint=hint)
    prefixes = sorted({name.split(".")[0] for name in tensors})
    if prefixes != ["main"]:
        seed = next((prefix for prefix in prefixes if prefix in PREFIXES.values()), None)
        raise LatentctlError(f"{file} does not hold pytorch/examples' DCGAN generator: its tensors are named "
                             f"{', '.join(prefixes[:4])}.*, its main.N.*",
                             hint="a seed notebook's checkpoint: leave out --arch" if seed else hint)
    layers = tuple(sorted({int(index) for name in tensors for index in name.split(".")[1:2] if index.isdigit()}))
    if layers == PYTORCH_DCGAN_DISCRIMINATOR_LAYERS:
        raise LatentctlError(f"{file} holds the discriminator of pytorch/examples' DCGAN (netD), not its "
                             "generator", hint="import the netG_epoch_N.pth saved beside it: a model folder "
                                                "keeps the generator only")
    if kind != "gan":
        raise LatentctlError(f"{file} holds pytorch/examples' DCGAN generator, an unconditional one, not a {kind}",
                             hint="import it with --kind gan")
    for name in [name for name in tensors if name.endswith(".running_mean")]:
        # PyTorch before 0.4.1 saved BatchNorm without the counter, which eval mode does not read
        tensors.setdefault(name.removesuffix("running_mean") + "num_batches_tracked", torch.tensor(0))
    return tensors


def build_pytorch_dcgan(tensors: dict[str, Any], file: Path) -> tuple[Any, store.ModelConfig]:
    """Return pytorch/examples' DCGAN generator holding ``tensors`` (each checked by name and shape), and its
    config: nz, ngf and nc read from the first and last transposed convolutions' weights."""
    first, last = tensors.get("main.0.weight"), tensors.get("main.12.weight")
    shapes = [f"{name} {'missing' if weight is None else tuple(weight.shape)}"
              for name, weight in (("main.0.weight", first), ("main.12.weight", last))
              if weight is None or weight.dim() != 4]
    try:
        if shapes:
            raise ValueError(f"{', '.join(shapes)}, not (nz, 8 ngf, 4, 4) and (ngf, nc, 4, 4)")
        network = configs.PytorchDCGANConfig(latent_dim=int(first.shape[0]), gen_width=int(last.shape[0]),
                                             channels=int(last.shape[1]))
    except ValueError as error:
        raise LatentctlError(f"{file} does not match pytorch/examples' DCGAN generator ({error})",
                             hint="only its generator, netG_epoch_N.pth, imports as --arch pytorch-dcgan") from None
    module = _checked_network(network, tensors, f"{file} does not match pytorch/examples' DCGAN generator of nz "
                              f"{network.latent_dim}, ngf {network.gen_width}, nc {network.channels}",
                              "only its generator, netG_epoch_N.pth, imports as --arch pytorch-dcgan")
    config = store.ModelConfig(kind="gan", network=network, labels=[],
                               normalization={"mean": [0.5] * network.channels, "std": [0.5] * network.channels})
    return module.eval(), config


def _checked_network(network: configs.NetworkConfig, tensors: dict[str, Any], mismatch: str, hint: str) -> Any:
    """The network ``network`` describes, holding ``tensors``; a LatentctlError ("MISMATCH: what differs") unless
    every tensor fits it by name and shape."""
    module = store.build_network(network)
    problems = store.state_problems(module, tensors)
    if problems:
        raise LatentctlError(f"{mismatch}: {'; '.join(problems)}", hint=hint)
    module.load_state_dict(tensors, strict=True)
    return module


def _names_main(content: Any) -> bool:
    """Whether a checkpoint is a bare state dict named as pytorch/examples' DCGAN names it (``main.N.*``)."""
    return (isinstance(content, dict) and bool(content)
            and all(str(name).removeprefix("module.").startswith("main.") for name in content))


def _convolution_weights(tensors: dict[str, Any], prefix: str) -> list[Any]:
    """Return the weights of the (transposed) convolutions ``prefix.N.0.weight``, in block order."""
    pattern = re.compile(rf"{prefix}\.(\d+)\.0\.weight")
    found = sorted((int(match[1]), value) for name, value in tensors.items()
                   if (match := pattern.fullmatch(name)) and value.dim() == 4)
    return [value for _, value in found]


def _kind_of_prefix(prefix: str) -> str:
    return "a classifier" if prefix == "classifier" else "a generator"


def _wrong_kind(file: Path, kind: str, holds: str) -> LatentctlError:
    right = "--kind classifier" if holds == "a classifier" else "--kind gan (or cgan for a conditional one)"
    return LatentctlError(f"{file} holds {holds}, not a {kind}", hint=f"import it with {right}")


def _folder_name(file: Path) -> str:
    return re.sub(r"[^\w.+-]", "-", file.stem).lstrip("-._+") or "imported"
