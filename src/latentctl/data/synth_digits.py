"""Synthetic MNIST: font digits bent into handwriting-like variety, written in MNIST's own file layout.

For machines without network access, and for tests. Pillow's bundled font draws each digit once per stroke
width (the same font everywhere, so a seed gives the same files everywhere); every sample is a random warp of
one of those glyphs, fitted and centred as MNIST's are (docs/data.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentctl import __version__
from latentctl.data import SYNTH_TEST_DIGITS, SYNTH_TRAIN_DIGITS
from latentctl.data.download import md5_file
from latentctl.data.mnist import IMAGE_SIZE, NUM_CLASSES, OFFICIAL_MD5, SPLITS, SYNTHETIC_MARKER, write_idx
from latentctl.errors import LatentctlError
from latentctl.files import write_json

# on_progress(digits done, digits in all), called after each batch
SynthProgress = Callable[[int, int], None]

GLYPH_SIZE = 128  # px, the square canvas each glyph is drawn on once
FONT_SIZE = 96  # px; the digits stand about 70 px tall on the canvas
STROKE_WIDTHS = (0, 1, 2)  # px of outline added at FONT_SIZE: from a fine pen to a felt tip
SUPERSAMPLE = 3  # render at 3x and average down, so strokes are anti-aliased like MNIST's
MARGIN = 3  # px at 28x28 kept free of the ink's bounding box on every side (MNIST's 20 px box leaves 4)
MEASURE_SIZE = 48  # px of the small render that finds each digit's bounding box and centre of mass
WOBBLE_KNOTS = 9  # control points per side of the elastic displacement over the glyph canvas
BATCH_SIZE = 1024


@dataclass(frozen=True)
class DigitStyle:
    """The ranges each random choice is drawn from, uniformly; the defaults resemble MNIST's spread."""

    rotation_degrees: float = 15.0  # +-
    slant: float = 0.3  # +- horizontal shear (tan of the slant angle)
    width: tuple[float, float] = (0.7, 1.15)  # horizontal squeeze or stretch
    wobble: float = 0.07  # std of the elastic displacement, in units of half the glyph canvas
    box_pixels: tuple[float, float] = (17.0, 20.0)  # the longer side of the digit; MNIST fits it to 20
    jitter_pixels: float = 1.0  # +- shift of the centre of mass from the image centre
    blur_sigma: tuple[float, float] = (0.35, 0.9)  # px, of the Gaussian blur at 28x28
    ink_gain: tuple[float, float] = (1.1, 1.6)  # how far past its peak the ink saturates (>1: bolder cores)


def synth_digits(root: Path, n_train: int = SYNTH_TRAIN_DIGITS, n_test: int = SYNTH_TEST_DIGITS, seed: int = 0,
                 on_progress: SynthProgress | None = None, *, force: bool = False) -> list[Path]:
    """Write a synthetic MNIST look-alike into ``root`` (same file names and format) and return the paths.

    Also writes ``SYNTHETIC.json`` (generator, seed, counts, version) so ``check_mnist`` can tell it is
    synthetic. Refuses to replace official MNIST files unless ``force``. Same seed, same bytes.
    """
    if n_train < 1 or n_test < 1:
        raise LatentctlError("both splits need at least one digit", hint="pass --n-train and --n-test >= 1")
    official = _official_files_in(root)
    if official and not force:
        raise LatentctlError(f"{root} already holds MNIST files ({', '.join(official)})",
                             hint="pass --force to replace them with synthetic digits, or choose another --root")
    total = n_train + n_test
    glyphs = render_glyphs()
    written: list[Path] = []
    for split_index, (split, count) in enumerate((("train", n_train), ("test", n_test))):
        offset = 0 if split == "train" else n_train
        report = None if on_progress is None else (lambda done, offset=offset: on_progress(offset + done, total))
        # One independent stream per split, so the test digits do not depend on --n-train.
        generator = torch.Generator().manual_seed(seed * len(SPLITS) + split_index)
        images, labels = make_digits(count, generator, glyphs, on_progress=report)
        images_name, labels_name = SPLITS[split]
        written.append(write_idx(root / images_name, images.numpy()))
        written.append(write_idx(root / labels_name, labels.to(torch.uint8).numpy()))
    marker = {"generator": "latentctl.data.synth_digits", "seed": seed,
              "counts": {"train": n_train, "test": n_test}, "latentctl_version": __version__}
    write_json(root / SYNTHETIC_MARKER, marker)
    return written + [root / SYNTHETIC_MARKER]


def _official_files_in(root: Path) -> list[str]:
    """Return the names of the MNIST files in ``root`` that synthetic digits would replace or shadow.

    The gzipped files count when they are byte-identical to the published ones; uncompressed copies (as
    torchvision keeps them, with no published checksum) count unless the folder is already synthetic,
    since the synthetic ``.gz`` files would be read in their place.
    """
    official = [name for name, md5 in OFFICIAL_MD5.items() if (root / name).is_file() and md5_file(root / name) == md5]
    if not (root / SYNTHETIC_MARKER).is_file():
        official += [name[:-3] for name in OFFICIAL_MD5 if (root / name[:-3]).is_file()]
    return official


def render_glyphs() -> torch.Tensor:
    """Return each digit drawn at each stroke width, (10, len(STROKE_WIDTHS), 128, 128) in [0, 1].

    Uses the font bundled with Pillow (>= 10.1, a FreeType font), never a system font.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=FONT_SIZE)
    glyphs = np.zeros((NUM_CLASSES, len(STROKE_WIDTHS), GLYPH_SIZE, GLYPH_SIZE), dtype=np.uint8)
    for digit in range(NUM_CLASSES):
        for index, stroke_width in enumerate(STROKE_WIDTHS):
            canvas = Image.new("L", (GLYPH_SIZE, GLYPH_SIZE), 0)
            ImageDraw.Draw(canvas).text((GLYPH_SIZE / 2, GLYPH_SIZE / 2), str(digit), fill=255, font=font,
                                        anchor="mm", stroke_width=stroke_width, stroke_fill=255)
            glyphs[digit, index] = np.asarray(canvas)
    return torch.from_numpy(glyphs).float().div_(255)


def make_digits(count: int, generator: torch.Generator, glyphs: torch.Tensor | None = None,
                style: DigitStyle = DigitStyle(),
                on_progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``count`` random digits and their labels: uint8 (N, 28, 28) and int64 (N,), labels balanced.

    Every random choice is drawn from ``generator`` up front, so the result does not depend on the
    batch size. ``on_progress(digits done)`` is called after each batch.
    """
    glyphs = render_glyphs() if glyphs is None else glyphs
    # Balanced: each digit appears count // 10 or count // 10 + 1 times, in random order.
    labels = (torch.arange(count) % NUM_CLASSES)[torch.randperm(count, generator=generator)]
    params = _draw_params(count, generator, style)
    images = torch.empty(count, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    for start in range(0, count, BATCH_SIZE):
        batch = slice(start, min(start + BATCH_SIZE, count))
        chosen = glyphs[labels[batch], params.stroke[batch]].unsqueeze(1)  # (B, 1, 128, 128)
        images[batch] = _render(chosen, params.slice(batch))
        if on_progress is not None:
            on_progress(batch.stop)
    return images, labels


@dataclass
class _Params:
    """One sample's worth of every random choice per row; see DigitStyle for the ranges."""

    stroke: torch.Tensor  # (N,) index into STROKE_WIDTHS
    warp: torch.Tensor  # (N, 2, 2) rotation x slant x width, digit space -> glyph space
    wobble: torch.Tensor  # (N, 2, K, K) control points of the elastic displacement
    box: torch.Tensor  # (N,) longer side, in pixels of the 28x28 image
    jitter: torch.Tensor  # (N, 2) x, y shift of the centre of mass, pixels
    blur: torch.Tensor  # (N,) Gaussian sigma, pixels
    gain: torch.Tensor  # (N,)

    def slice(self, rows: slice) -> _Params:
        return _Params(*(getattr(self, field.name)[rows] for field in dataclasses.fields(self)))


def _draw_params(count: int, generator: torch.Generator, style: DigitStyle) -> _Params:
    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return torch.rand(count, *shape, generator=generator) * (high - low) + low

    angle = uniform(-style.rotation_degrees, style.rotation_degrees) * (math.pi / 180)
    slant = uniform(-style.slant, style.slant)
    width = uniform(*style.width)
    cos, sin, zero, one = angle.cos(), angle.sin(), torch.zeros(count), torch.ones(count)
    rotate = torch.stack([cos, -sin, sin, cos], dim=1).view(count, 2, 2)
    shear = torch.stack([one, slant, zero, one], dim=1).view(count, 2, 2)
    # Sampling at x / width draws the glyph `width` times as wide.
    stretch = torch.stack([1 / width, zero, zero, one], dim=1).view(count, 2, 2)
    return _Params(
        stroke=torch.randint(len(STROKE_WIDTHS), (count,), generator=generator),
        warp=rotate @ shear @ stretch,
        wobble=torch.randn(count, 2, WOBBLE_KNOTS, WOBBLE_KNOTS, generator=generator) * style.wobble,
        box=uniform(*style.box_pixels),
        jitter=uniform(-style.jitter_pixels, style.jitter_pixels, 2),
        blur=uniform(*style.blur_sigma),
        gain=uniform(*style.ink_gain),
    )


def _render(glyphs: torch.Tensor, params: _Params) -> torch.Tensor:
    """Return the glyphs (B, 1, 128, 128) warped, fitted, centred, blurred: uint8 (B, 28, 28)."""
    count = len(glyphs)
    # 1. A small render over the whole digit space finds each digit's bounding box and centre of mass.
    digit_space = _pixel_centres(MEASURE_SIZE).expand(count, -1)
    measured = _sample(glyphs, digit_space, digit_space, params)  # (B, 48, 48) in [0, 1]
    centre, low, high = _centre_and_bounds(measured)  # each (B, 2) as x, y, in digit-space units

    # 2. The real render, at SUPERSAMPLE x 28: the longer side spans `box` pixels and the centre of mass
    #    sits at the image centre (+ jitter), moved in just enough to keep the ink MARGIN pixels from the
    #    edges, as lopsided digits (a 7's heavy top) would otherwise be cut off.
    #    Output coordinate o maps to digit space as d = o / scale + shift, i.e. o = (d - shift) * scale.
    pixel = 2 / IMAGE_SIZE  # one pixel of the 28x28 image, in normalised [-1, 1] units
    extent = (high - low).amax(dim=1).clamp_min(pixel)  # an empty render (never expected) stays finite
    scale = (params.box * pixel / extent)[:, None]  # output units per digit-space unit
    limit = 1 - MARGIN * pixel
    landing = torch.clamp(params.jitter * pixel,  # where the centre of mass lands, in output units
                          min=-limit - (low - centre) * scale, max=limit - (high - centre) * scale)
    shift = centre - landing / scale
    output = _pixel_centres(IMAGE_SIZE * SUPERSAMPLE)
    images = _sample(glyphs, output / scale + shift[:, :1], output / scale + shift[:, 1:], params)
    images = F.avg_pool2d(images.unsqueeze(1), SUPERSAMPLE).squeeze(1)  # (B, 28, 28)

    # 3. Soften like a scanned pen stroke, then set the ink: the peak saturates to white.
    images = _gaussian_blur(images, params.blur)
    peak = images.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    images = (images / peak * params.gain[:, None, None]).clamp_(0, 1)
    return images.mul_(255).round_().to(torch.uint8)


def _pixel_centres(size: int) -> torch.Tensor:
    """Return the normalised [-1, 1] coordinates of the centres of ``size`` pixels, (size,)."""
    return (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1


def _sample(glyphs: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, params: _Params) -> torch.Tensor:
    """Return the glyphs (B, 1, G, G) seen through each sample's warp and wobble on the digit-space grid
    ``xs`` (B, W) by ``ys`` (B, H): the pixel at (x, y) shows glyph(warp @ (x, y) + wobble(x, y)), (B, H, W).
    """
    # The grid is axis-aligned in digit space, so the linear part and the wobble are both separable:
    # no (B, H, W, 2) matrix products, just broadcasting and small batched matmuls.
    warp = params.warp[:, None, None]  # (B, 1, 1, 2, 2)
    grid = xs[:, None, :, None] * warp[..., 0] + ys[:, :, None, None] * warp[..., 1]  # (B, H, W, 2)
    grid += _wobble(params.wobble, xs, ys).permute(0, 2, 3, 1)
    return F.grid_sample(glyphs, grid, mode="bilinear", padding_mode="zeros", align_corners=False).squeeze(1)


def _wobble(field: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Return the elastic displacement (B, 2, H, W), x then y, on the grid ``xs`` (B, W) by ``ys`` (B, H).

    ``field`` (B, 2, K, K) holds control points spread evenly over [-1, 1]; a cubic B-spline through
    them gives a displacement whose bends are smooth, like a hand's, rather than kinked.
    """
    along_x, along_y = _bspline_weights(xs, field.shape[-1]), _bspline_weights(ys, field.shape[-2])
    return along_y[:, None] @ field @ along_x.transpose(1, 2)[:, None]


def _bspline_weights(coords: torch.Tensor, knots: int) -> torch.Tensor:
    """Return the cubic B-spline weight of each of ``knots`` control points at each coordinate, (B, N, K)."""
    position = (coords.clamp(-1, 1) + 1) * ((knots - 1) / 2)
    distance = (position[..., None] - torch.arange(knots, dtype=coords.dtype)).abs()
    near = (4 - 6 * distance**2 + 3 * distance**3) / 6
    far = (2 - distance).clamp_min(0) ** 3 / 6
    return torch.where(distance < 1, near, far)


def _centre_and_bounds(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return each image's centre of mass and the low and high corners of its ink's bounding box, each
    (B, 2) as x, y, in the normalised [-1, 1] coordinates of ``images`` (B, H, W)."""
    size = images.shape[-1]
    coords = _pixel_centres(size)
    mass = images.sum(dim=(1, 2)).clamp_min(1e-6)
    centre = torch.stack([(images.sum(dim=1) * coords).sum(dim=1), (images.sum(dim=2) * coords).sum(dim=1)], 1)
    ink = images > 0.5
    present = torch.stack([ink.any(dim=1), ink.any(dim=2)], dim=1)  # (B, 2, size): columns, rows with ink
    half_pixel = 1 / size  # from pixel centres to pixel edges
    low = torch.where(present, coords, torch.inf).amin(dim=2) - half_pixel
    high = torch.where(present, coords, -torch.inf).amax(dim=2) + half_pixel
    return centre / mass[:, None], low, high


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Return images (B, H, W) blurred by a per-image Gaussian of std ``sigma`` (B,), zero beyond the edges.

    A separable blur is two banded matrix products per image: one batched matmul each way.
    """
    size = images.shape[-1]
    offsets = torch.arange(size, dtype=images.dtype)
    distance = offsets[:, None] - offsets[None, :]  # (H, H)
    band = torch.exp(-0.5 * (distance / sigma[:, None, None]) ** 2) * (distance.abs() <= radius)
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
    band = band / torch.exp(-0.5 * (taps / sigma[:, None]) ** 2).sum(dim=1)[:, None, None]  # (B, H, H)
    return band @ images @ band.transpose(1, 2)
