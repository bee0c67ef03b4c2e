"""FID and KID of a generator against real images: the numbers papers and repos report.

torch-fidelity computes them (its port of the TensorFlow FID Inception, whose values match the reference code to
machine precision, and its statistics); latentctl feeds it uint8 images and caches a dataset's features beside its
prepared cache. The feature network is one seam (``FeatureNetwork``), so tests run the metric on a stand-in.
docs/metrics.md says how to read the numbers and how to get the weights onto a machine without internet.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from latentctl import files, paths
from latentctl.errors import LatentctlError, UsageError, first_line

if TYPE_CHECKING:
    import numpy as np
    import torch

FEATURES = "2048"  # the Inception pool features FID and KID are defined on
INCEPTION_NAME = "inception-v3-compat"  # torch-fidelity's name for the TensorFlow FID Inception
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")  # what torch-fidelity itself fetches
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's defaults, as the KID paper uses them
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
REFERENCE_SEED = 0  # which real images a reference of n images takes: fixed, so the cache is reused
CACHE_FOLDER = "fid"


class FeatureNetwork(Protocol):
    """Features (N, F) of uint8 RGB images (N, 3, H, W); ``name`` tells cached features of one network from
    another's."""

    name: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class FIDOptions:
    """What :func:`evaluate_fid` measures, with ``latentctl eval fid``'s defaults."""

    n: int = 10_000  # generated images, and real ones (fewer when the data has fewer)
    batch_size: int = 100
    seed: int = 0  # generated images are seeds seed, seed + 1, ...
    kid_subsets: int = KID_SUBSETS
    kid_subset_size: int = KID_SUBSET_SIZE  # at most n


# ---------------------------------------------------------------------------------------------- the network

class Inception:
    """torch-fidelity's FID Inception as a FeatureNetwork: uint8 images of any size -> (N, 2048) pool features."""

    name = f"{INCEPTION_NAME}-{FEATURES}"

    def __init__(self, weights: Path | None = None, device: torch.device | str = "cpu") -> None:
        import torch
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        weights = Path(weights) if weights is not None else fetch_inception()
        check_inception(weights)
        # torch-fidelity reads the file itself with full unpickling; check_inception has read it with
        # weights_only=True first, so only a file made of tensors gets that far
        self.network = FeatureExtractorInceptionV3(INCEPTION_NAME, [FEATURES],
                                                   feature_extractor_weights_path=str(weights)).to(device)
        self.device = torch.device(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.network(images.to(self.device))[0].double().cpu()


def inception_cache() -> Path:
    """Where torch-fidelity (torch.hub) keeps the Inception weights: ``$TORCH_HOME/hub/checkpoints/...``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[1]


def fetch_inception() -> Path:
    """Return the Inception weights in torch.hub's cache, downloading them there on first use."""
    import torch

    path = inception_cache()
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(INCEPTION_URL, str(path), progress=False)
    except Exception as error:  # no network, a proxy, a full disk: all end the same way for the user
        raise LatentctlError(f"cannot download the FID Inception weights ({first_line(error, 120)})",
                             hint=f"on a machine with internet, fetch {INCEPTION_URL} and pass the file with "
                                  f"--inception-weights, or copy it to {path}") from None
    return path


def check_inception(weights: Path) -> None:
    """Raise a LatentctlError unless ``weights`` is a tensors-only checkpoint of the FID Inception."""
    import torch

    if not weights.is_file():
        raise LatentctlError(f"{weights} does not exist", hint=f"--inception-weights takes the file {INCEPTION_URL} "
                                                               "downloads")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:
        raise LatentctlError(f"{weights} is not a readable weights file ({first_line(error, 120)})",
                             hint=f"download it again from {INCEPTION_URL}") from None
    if not isinstance(state, dict) or "Mixed_7c.branch_pool.conv.weight" not in state or "fc.weight" not in state:
        raise LatentctlError(f"{weights} does not hold the FID Inception's weights",
                             hint=f"--inception-weights takes the file {INCEPTION_URL} downloads")


# ---------------------------------------------------------------------------------------------- the metric

def extract(batches: Iterator[torch.Tensor], network: FeatureNetwork,
            on_progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Features (N, F) float64 of uint8 batches (B, C, H, W); one channel is repeated into RGB."""
    import torch

    parts = []
    for batch in batches:
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)
        parts.append(network(batch.contiguous()).double())
        if on_progress is not None:
            on_progress(batch.shape[0])
    return torch.cat(parts)


def frechet_distance(features_1: torch.Tensor, features_2: torch.Tensor) -> float:
    """FID between two feature sets (N, F): the Fréchet distance of the Gaussians fitted to them."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    stats = [fid_features_to_statistics(features.double().cpu()) for features in (features_1, features_2)]
    return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


def kernel_distance(features_1: torch.Tensor, features_2: torch.Tensor, subsets: int = KID_SUBSETS,
                    subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """KID (mean, standard deviation over ``subsets`` random subsets) between two feature sets (N, F)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    size = min(subset_size, len(features_1), len(features_2))
    kid = kid_features_to_metric(features_1.double().cpu(), features_2.double().cpu(), kid_subsets=subsets,
                                 kid_subset_size=size, kid_kernel="poly", kid_kernel_poly_degree=3,
                                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=seed, verbose=False)
    return kid[KEY_METRIC_KID_MEAN], kid[KEY_METRIC_KID_STD]


# ---------------------------------------------------------------------------------------------- real images

@dataclass
class RealImages:
    """The real side of a comparison: a name, a way to read N of its images, and where its features are cached."""

    name: str  # "celeba", "mnist" or a folder
    count: int  # images there are
    read: Callable[[np.ndarray], torch.Tensor]  # indices -> uint8 (B, C, H, W)
    cache: Path  # folder for the features
    fingerprint: str  # changes when the images do


def real_images(data: str | Path | None, config: Any) -> RealImages:
    """The images a generator with ``config`` is compared with: ``data`` is mnist, celeba or the name of an imported
    folder (in $LATENTCTL_HOME), a folder holding MNIST or CelebA, or a folder of images; without it, the dataset
    the model was trained on, at the size and crop it was trained at."""
    trained_on = config.training.get("dataset", {}) if isinstance(config.training.get("dataset"), dict) else {}
    from latentctl.data.folders import is_folder_dataset

    if data is None:
        name = str(trained_on.get("name", ""))
        data = name if trained_on.get("folder") else "mnist" if "digits" in name or name == "mnist" else \
            "celeba" if "faces" in name or name == "celeba" else None
        if data is None:
            raise UsageError("the model does not record the dataset it was trained on: pass --data mnist, celeba, "
                             "an imported folder's name or a folder of images", option="--data")
    if str(data) in ("mnist", "celeba"):
        folder, layout = paths.data_dir(str(data)), str(data)
    elif is_folder_dataset(paths.data_dir(str(data))):  # a name given to 'latentctl data import folder'
        return _imported(paths.data_dir(str(data)), config)
    else:
        folder = Path(data).expanduser()
        if not folder.is_dir():
            raise UsageError(f"{data} is neither a dataset (mnist, celeba) nor a folder", option="--data")
        layout = _layout(folder)
    if layout == "mnist":
        return _mnist(folder, config)
    if layout == "celeba":
        return _celeba(folder, config, trained_on)
    return _folder(folder, config)


def _layout(folder: Path) -> str | None:
    """"mnist" or "celeba" for a folder holding one in its usual layout (torchvision's too), else None."""
    if any(any((folder / sub).glob("train-images-idx3-ubyte*")) for sub in (".", "MNIST/raw")):
        return "mnist"
    if any((folder / sub / name).is_file() for sub in (".", "celeba")
           for name in ("list_attr_celeba.txt", "list_attr_celeba.csv")):
        return "celeba"
    return None


def _mnist(root: Path, config: Any) -> RealImages:
    from latentctl.train.cgan import load_digits

    digits = load_digits(root)  # (N, 1, 28, 28) uint8: what `train cgan` reads, with the fingerprint it records
    if config.image_size != digits.images.shape[-1] or config.channels != 1:
        raise UsageError(f"the model draws {config.image_size}px images with {config.channels} channels, MNIST's "
                         "are 28px gray", option="--data")
    return real_from_images("mnist", digits.images, root / CACHE_FOLDER, digits.fingerprint()["sha256"])


def _celeba(root: Path, config: Any, trained_on: dict[str, Any]) -> RealImages:
    import numpy as np
    import torch

    from latentctl.data.prepare import DEFAULT_CROP, ensure_prepared

    size, crop = config.image_size, int(trained_on.get("crop", DEFAULT_CROP))
    if config.channels != 3:
        raise UsageError(f"the model draws {config.channels}-channel images, CelebA's are RGB", option="--data")
    prepared = ensure_prepared(root, size, crop)
    images, _ = prepared.select("train")  # (N, 3, S, S) uint8, memory-mapped: what the GAN trained on
    return RealImages("celeba", len(images), lambda index: torch.from_numpy(np.asarray(images[np.sort(index)])),
                      prepared.path / CACHE_FOLDER, prepared.fingerprint()["sha256"])


def _imported(root: Path, config: Any) -> RealImages:
    import numpy as np
    import torch

    from latentctl.data.folders import load_folder

    prepared = load_folder(root, config.image_size)
    images = prepared.images  # (N, 3, S, S) uint8, memory-mapped: all of them, as `train gan --data NAME` reads
    return RealImages(prepared.meta["name"], len(images),
                      lambda index: torch.from_numpy(np.asarray(images[np.sort(index)])), prepared.path / CACHE_FOLDER,
                      prepared.fingerprint()["sha256"])


def _folder(folder: Path, config: Any) -> RealImages:
    import numpy as np

    from latentctl.eval.reading import read_face_images

    found = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if not found:
        raise LatentctlError(f"no images in {folder}", hint=f"--data takes a folder of {', '.join(IMAGE_SUFFIXES)} "
                                                            "files (searched recursively)")
    listing = "\n".join(f"{path.relative_to(folder)} {path.stat().st_size} {path.stat().st_mtime_ns}" for path in found)
    key = hashlib.sha256(f"{folder.resolve()}\n{listing}".encode()).hexdigest()[:16]
    return RealImages(str(folder), len(found),
                      lambda index: read_face_images([found[i] for i in np.sort(index)], config.image_size, 0,
                                                     "bilinear"),
                      paths.home() / "cache" / CACHE_FOLDER / key, key)


def real_from_images(name: str, images: torch.Tensor, cache: Path, fingerprint: str) -> RealImages:
    """Real images already in memory (a training set: uint8 (N, C, H, W)) as the real side of a comparison."""
    import torch

    return RealImages(name, len(images), lambda index: images[torch.from_numpy(index)], cache, fingerprint)


def reference_features(real: RealImages, n: int, network: FeatureNetwork, batch_size: int,
                       on_progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, Path, bool]:
    """Features of ``n`` of the real images (the same n every time), from the cache when they are there;
    returns (features, cache file, whether it came from the cache)."""
    import numpy as np

    count = min(n, real.count)
    path = real.cache / f"{network.name}-{count}-{real.fingerprint}.safetensors"
    if path.is_file():
        try:
            return files.load_tensors(path)["features"].double(), path, True
        except Exception:  # a damaged cache is rebuilt, not fatal
            pass
    chosen = np.random.default_rng(REFERENCE_SEED).permutation(real.count)[:count]
    batches = (real.read(chosen[start:start + batch_size]) for start in range(0, count, batch_size))
    features = extract(batches, network, on_progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.save_tensors(path, {"features": features.float()},
                           {"network": network.name, "images": str(count), "data": real.name})
    except OSError:  # a read-only dataset folder: the numbers stand, only the reuse is lost
        pass
    return features, path, False


# ---------------------------------------------------------------------------------------------- the call

@dataclass
class FIDReport:
    """What ``latentctl eval fid`` measured."""

    model: Path
    data: str
    fid: float
    kid: float
    kid_std: float
    generated: int
    real: int
    network: str
    reference: Path
    reference_cached: bool
    seconds: float
    options: FIDOptions = field(default_factory=FIDOptions)

    def to_json(self) -> dict[str, Any]:
        return {"model": str(self.model), "data": self.data, "fid": round(self.fid, 4),
                "kid": round(self.kid, 6), "kid_std": round(self.kid_std, 6), "generated": self.generated,
                "real": self.real, "features": self.network, "seed": self.options.seed,
                "reference": {"path": str(self.reference), "cached": self.reference_cached},
                "seconds": round(self.seconds, 1)}


def generated_batches(generator: torch.nn.Module, config: Any, n: int, seed: int, batch_size: int
                      ) -> Iterator[torch.Tensor]:
    """uint8 images (B, C, H, W) of seeds ``seed``..``seed + n - 1``: digit i mod classes for a class-conditional
    generator, attributes drawn from its prior for an attribute-conditioned one. ``config``: a ModelConfig or
    the network's config."""
    import torch

    from latentctl.latent.sampling import draw_attributes, generate, noise_for_seeds

    network = getattr(config, "network", config)  # a model's config, or the network's own (a trainer's)
    classes, attributes = getattr(network, "num_classes", 0), getattr(network, "num_attributes", 0)
    for start in range(seed, seed + n, batch_size):
        seeds = list(range(start, min(start + batch_size, seed + n)))
        labels = None
        if attributes:
            labels = draw_attributes(generator.attribute_prior, seeds)
        elif classes:
            labels = torch.tensor(seeds) % classes
        images = generate(generator, noise_for_seeds(seeds, config.latent_dim), labels)  # (B, C, H, W) in [-1, 1]
        yield images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def evaluate_fid(model: str | Path | None = None, options: FIDOptions | None = None, *, data: str | Path | None = None,
                 inception_weights: str | Path | None = None, network: FeatureNetwork | None = None,
                 device: str = "auto", on_progress: Callable[[str, int, int], None] | None = None) -> FIDReport:
    """FID and KID of ``model``'s images (a folder, a registered name or a Hub repo; default ``gan-celeba``)
    against ``data`` (see :func:`real_images`). ``network`` replaces the Inception (``inception_weights``: its
    file; without one it is fetched into torch.hub's cache on first use). ``on_progress(stage, done, total)``."""
    from latentctl import lookup
    from latentctl.device import resolve_device
    from latentctl.store import load_model

    options = options or FIDOptions()
    started = time.perf_counter()
    model_dir = lookup.resolve_model(model, "gan-celeba")
    torch_device = resolve_device(device)
    generator, config = load_model(model_dir, ("gan", "cgan"), torch_device)
    real = real_images(data, config)
    network = network or Inception(inception_weights and Path(inception_weights), torch_device)

    def progress(stage: str, total: int) -> Callable[[int], None] | None:
        done = [0]

        def advance(count: int) -> None:
            done[0] += count
            on_progress(stage, done[0], total)
        return advance if on_progress else None

    count = min(options.n, real.count)
    reference, cache, cached = reference_features(real, options.n, network, options.batch_size,
                                                  progress("real images", count))
    fake = extract(generated_batches(generator, config, options.n, options.seed, options.batch_size), network,
                   progress("generated images", options.n))
    kid, kid_std = kernel_distance(fake, reference, options.kid_subsets, options.kid_subset_size, options.seed)
    return FIDReport(model_dir, real.name, frechet_distance(fake, reference), kid, kid_std, len(fake), len(reference),
                     network.name, cache, cached, time.perf_counter() - started, options)


class FIDProbe:
    """FID and KID of a generator against fixed real images whose features are read once: what training measures
    every few epochs (``train gan|cgan --fid-every N``)."""

    def __init__(self, real: RealImages, n: int, network: FeatureNetwork,
                 batch_size: int = FIDOptions.batch_size) -> None:
        self.real, self.n, self.network, self.batch_size = real, n, network, batch_size
        self.reference: torch.Tensor | None = None

    def __call__(self, generator: torch.nn.Module, config: Any) -> dict[str, float]:
        """{"fid", "kid", "fid_images"} of ``generator``'s images (seeds 0..n-1, as ``eval fid`` draws them)."""
        if self.reference is None:
            self.reference, _, _ = reference_features(self.real, self.n, self.network, self.batch_size)
        fake = extract(generated_batches(generator, config, self.n, 0, self.batch_size), self.network)
        kid, _ = kernel_distance(fake, self.reference)
        return {"fid": round(frechet_distance(fake, self.reference), 4), "kid": round(kid, 6),
                "fid_images": len(fake)}
