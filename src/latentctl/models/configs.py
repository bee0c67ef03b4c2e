"""The configs of the networks latentctl stores, and the registry that finds a network by architecture name.

A model folder's ``config.json`` names an architecture (``architecture["name"]``) and holds its config's
fields, so a model is rebuilt as ``NETWORKS[name](ARCHITECTURES[name](**fields))``. The configs are
plain dataclasses without torch, so reading and validating a folder (``latentctl models list``) needs
no network; each network class registers itself with ``@register`` where it is defined.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

UPSAMPLING = ("transpose", "nearest")
MAX_WIDTH_FACTOR = 8  # classifier channels stop doubling at 8x width (reached at 64 px; caps larger sizes)

# The seed notebooks' layouts (models.seed): one (output width as a multiple of hidden_dim, 0 for the
# image's channels or the logits; kernel; stride) per layer
GENERATOR_LAYOUTS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "dcgan-64": ((8, 3, 2), (4, 3, 2), (2, 3, 2), (1, 3, 2), (0, 4, 2)),  # 1 -> 3 -> 7 -> 15 -> 31 -> 64
    "dcgan-28": ((4, 3, 2), (2, 4, 1), (1, 3, 2), (0, 4, 2)),  # 1 -> 3 -> 6 -> 13 -> 28
}
CLASSIFIER_LAYOUTS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "classifier-64": ((1, 4, 2), (2, 4, 2), (4, 4, 3), (0, 4, 2)),  # 64 -> 31 -> 14 -> 4 -> 1
}
CLASSIFIER_IMAGE_SIZES = {"classifier-64": 64}  # what the seed trained it on


def base_size(image_size: int) -> tuple[int, int]:
    """Return ``(s, k)`` with ``image_size == s * 2**k``, ``4 <= s <= 7``, ``k >= 1``."""
    size, doublings = image_size, 0
    while size > 7 and size % 2 == 0:
        size, doublings = size // 2, doublings + 1
    if not 4 <= size <= 7 or doublings < 1:
        raise ValueError(f"image size {image_size} is not s * 2**k with 4 <= s <= 7 (e.g. 28, 32, 64, 128)")
    return size, doublings


def _check_positive(config: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class GANConfig:
    """Everything needed to rebuild a generator/discriminator pair: ``Generator(config)`` (models.dcgan)."""

    architecture: ClassVar[str] = "dcgan"
    kinds: ClassVar[tuple[str, ...]] = ("cgan", "gan")

    latent_dim: int = 100
    num_classes: int = 10  # 0 for an unconditional GAN
    embed_dim: int = 50  # size of the label embedding given to the generator
    num_attributes: int = 0  # > 0: conditioned on that many binary attributes instead (num_classes 0)
    attribute_prior_size: int = 0  # attribute vectors of real faces the generator keeps, to draw new ones from
    image_size: int = 28
    channels: int = 1
    gen_width: int = 64  # channels of the generator's last hidden block; doubled per block towards the input
    disc_width: int = 64  # channels of the discriminator's first block; doubled per block towards the logit
    upsample: str = "transpose"  # "transpose" (DCGAN) or "nearest" (upsample + 3x3 conv); see models.dcgan

    def __post_init__(self) -> None:
        base_size(self.image_size)  # raises on unsupported sizes
        for name in ("latent_dim", "image_size", "channels", "gen_width", "disc_width"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {self.upsample!r}")
        if self.num_classes < 0 or self.num_attributes < 0 or (self.conditional and self.embed_dim <= 0):
            raise ValueError("num_classes and num_attributes must be >= 0, and embed_dim positive when conditional")
        if self.num_classes > 0 and self.num_attributes > 0:
            raise ValueError("a GAN is conditioned on classes or on attributes, not both")
        if self.attribute_prior_size < 0 or (self.attribute_prior_size > 0) != (self.num_attributes > 0):
            raise ValueError("attribute_prior_size must be > 0 exactly when num_attributes is")

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0 or self.num_attributes > 0

    @property
    def condition(self) -> str:
        """What the GAN is conditioned on: "class", "attributes" or "none"."""
        return "class" if self.num_classes > 0 else "attributes" if self.num_attributes > 0 else "none"

    @property
    def num_labels(self) -> int:
        """How many label names the model has: its classes or its attributes (0 when unconditional)."""
        return self.num_classes or self.num_attributes

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to rebuild an attribute classifier: ``AttributeClassifier(config)`` (models.classifier)."""

    architecture: ClassVar[str] = "attribute-cnn"
    kinds: ClassVar[tuple[str, ...]] = ("classifier",)

    image_size: int = 64
    channels: int = 3
    num_attributes: int = 40
    width: int = 32  # channels of the first convolution; doubled at each lower resolution
    members: int = 1  # networks whose logits are averaged (an ensemble); 1: one network

    def __post_init__(self) -> None:
        base_size(self.image_size)  # raises on unsupported sizes
        _check_positive(self, ("image_size", "channels", "num_attributes", "width", "members"))

    @property
    def num_labels(self) -> int:
        return self.num_attributes

    def to_dict(self) -> dict:
        return asdict(self)

    def widths(self) -> list[int]:
        """Return the channels at each resolution level, from ``image_size / 2`` down to the base."""
        _, doublings = base_size(self.image_size)
        return [self.width * min(2**level, MAX_WIDTH_FACTOR) for level in range(doublings)]


def generator_output_size(layout: str) -> int:
    """Return the image side a seed generator layout draws from a 1x1 input."""
    size = 1
    for _, kernel, stride in GENERATOR_LAYOUTS[layout]:
        size = (size - 1) * stride + kernel
    return size


def classifier_output_size(layout: str, image_size: int) -> int:
    """Return the side of the map a seed classifier layout leaves of an ``image_size`` input (1 when it fits)."""
    size = image_size
    for _, kernel, stride in CLASSIFIER_LAYOUTS[layout]:
        size = (size - kernel) // stride + 1 if size >= kernel else 0
    return size


@dataclass(frozen=True)
class SeedGeneratorConfig:
    """Everything needed to rebuild a seed generator: ``SeedGenerator(config)`` (models.seed)."""

    architecture: ClassVar[str] = "seed-dcgan"
    kinds: ClassVar[tuple[str, ...]] = ("cgan", "gan")

    layout: str = "dcgan-64"
    latent_dim: int = 64
    num_classes: int = 0  # > 0: a one-hot label follows the noise (the conditional MNIST notebook)
    image_size: int = 64  # what the layout draws; recorded so that config.json says it
    channels: int = 3
    hidden_dim: int = 64  # the seed's hidden_dim: the width of the last hidden block

    def __post_init__(self) -> None:
        if self.layout not in GENERATOR_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(GENERATOR_LAYOUTS)}, got {self.layout!r}")
        _check_positive(self, ("latent_dim", "image_size", "channels", "hidden_dim"))
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes!r}")
        if self.image_size != generator_output_size(self.layout):
            raise ValueError(f"the {self.layout} layout draws {generator_output_size(self.layout)}px images, "
                             f"not {self.image_size}px")

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def embed_dim(self) -> int:
        """The size of the label input: the one-hot vector."""
        return self.num_classes

    @property
    def num_labels(self) -> int:
        return self.num_classes

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SeedClassifierConfig:
    """Everything needed to rebuild the seed attribute classifier: ``SeedClassifier(config)`` (models.seed)."""

    architecture: ClassVar[str] = "seed-classifier"
    kinds: ClassVar[tuple[str, ...]] = ("classifier",)

    layout: str = "classifier-64"
    image_size: int = 64
    channels: int = 3
    num_attributes: int = 40
    hidden_dim: int = 64  # the seed's hidden_dim: the width of the first convolution

    def __post_init__(self) -> None:
        if self.layout not in CLASSIFIER_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(CLASSIFIER_LAYOUTS)}, got {self.layout!r}")
        _check_positive(self, ("image_size", "channels", "num_attributes", "hidden_dim"))
        if classifier_output_size(self.layout, self.image_size) != 1:
            raise ValueError(f"the {self.layout} layout reads images whose side ends at 1 pixel (64), "
                             f"not {self.image_size}px")

    @property
    def num_labels(self) -> int:
        return self.num_attributes

    def to_dict(self) -> dict:
        return asdict(self)


PYTORCH_DCGAN_IMAGE_SIZE = 64  # pytorch/examples' generator: 1 -> 4 -> 8 -> 16 -> 32 -> 64, whatever --imageSize


@dataclass(frozen=True)
class PytorchDCGANConfig:
    """Everything needed to rebuild the generator of pytorch/examples' ``dcgan/main.py``:
    ``PytorchDCGANGenerator(config)`` (models.pytorch_dcgan). Its flags were ``--nz``, ``--ngf`` and ``nc``."""

    architecture: ClassVar[str] = "pytorch-dcgan"
    kinds: ClassVar[tuple[str, ...]] = ("gan",)

    latent_dim: int = 100  # nz
    gen_width: int = 64  # ngf: channels of the last hidden block; 8x that after the first
    channels: int = 3  # nc: 3, or 1 for its --dataset mnist
    image_size: int = PYTORCH_DCGAN_IMAGE_SIZE  # what the network draws; recorded so that config.json says it

    def __post_init__(self) -> None:
        _check_positive(self, ("latent_dim", "gen_width", "channels", "image_size"))
        if self.image_size != PYTORCH_DCGAN_IMAGE_SIZE:
            raise ValueError(f"pytorch/examples' DCGAN generator draws {PYTORCH_DCGAN_IMAGE_SIZE}px images, "
                             f"not {self.image_size}px")

    @property
    def num_labels(self) -> int:
        return 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to rebuild a latent encoder, image to a generator's latent: ``LatentEncoder(config)``
    (models.encoder). Which generator it belongs to is in its config.json's training record."""

    architecture: ClassVar[str] = "latent-encoder"
    kinds: ClassVar[tuple[str, ...]] = ("encoder",)

    image_size: int = 64
    channels: int = 3
    latent_dim: int = 100  # the generator's noise size: what the encoder outputs
    width: int = 32  # channels of the first convolution; doubled at each lower resolution, as the discriminator's

    def __post_init__(self) -> None:
        base_size(self.image_size)  # raises on unsupported sizes
        _check_positive(self, ("image_size", "channels", "latent_dim", "width"))

    @property
    def num_labels(self) -> int:
        return 0

    def to_dict(self) -> dict:
        return asdict(self)


NetworkConfig = (GANConfig | ClassifierConfig | SeedGeneratorConfig | SeedClassifierConfig | PytorchDCGANConfig
                 | EncoderConfig)
# architecture name (config.json's architecture["name"]) -> its config class
ARCHITECTURES: dict[str, type[NetworkConfig]] = {
    config.architecture: config for config in (GANConfig, ClassifierConfig, SeedGeneratorConfig, SeedClassifierConfig,
                                               PytorchDCGANConfig, EncoderConfig)}
# architecture name -> the network built from that config, filled by @register as the network modules load
NETWORKS: dict[str, type] = {}
Network = TypeVar("Network", bound=type)


def register(network: Network) -> Network:
    """Class decorator: make ``network`` (an nn.Module taking its ``config_class`` instance) the network that
    model folders of that architecture rebuild."""
    NETWORKS[network.config_class.architecture] = network
    return network


def network_config(architecture: dict[str, Any]) -> NetworkConfig:
    """Return the config an ``architecture`` (config.json's: ``name`` plus fields) describes.

    Raises ValueError for an unknown name and TypeError or ValueError for fields its config refuses."""
    name = architecture.get("name")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown name {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**{key: value for key, value in architecture.items() if key != "name"})

