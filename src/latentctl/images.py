"""Pixels in and out: uint8 images to [-1, 1], and grids, strips, animated GIFs and small plots, all written
atomically."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from latentctl.errors import LatentctlError
from latentctl.files import atomic_path


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 in [-1, 1], the range generators draw and classifiers read: the one
    place pixels are normalised (``x / 127.5 - 1``); a new tensor, whatever ``images`` is."""
    return images.to(torch.float32, copy=True).div_(127.5).sub_(1)


def to_pil(images: torch.Tensor, nrow: int, padding: int = 2, scale: int = 1) -> Image.Image:
    """Tile images (N, C, H, W) in [-1, 1] into one PIL image with ``nrow`` images per row."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, normalize=True,
                     value_range=(-1, 1), pad_value=0.15)  # (C, H', W') in [0, 1]
    array = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[:, :, 0] if images.shape[1] == 1 else array)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture


def check_writable(path: Path) -> None:
    """Raise a LatentctlError unless ``path`` can be created: its folder must exist."""
    if not path.parent.exists():
        raise LatentctlError(f"the folder {path.parent} does not exist",
                             hint="create it first, or choose another output path")
    if path.is_dir():
        raise LatentctlError(f"{path} is a folder", hint="give a file name ending in .png or .gif")
    _format(path)  # an unknown extension fails here, before any work


def save_image(picture: Image.Image, path: Path) -> Path:
    """Save a PIL image atomically, in the format its suffix names."""
    check_writable(path)
    with atomic_path(path) as temporary:
        picture.save(temporary, format=_format(path))
    return path


def save_gif(frames: Sequence[Image.Image], path: Path, frame_ms: int = 120, bounce: bool = True) -> Path:
    """Save frames as a looping GIF; ``bounce`` plays them forth then back so the loop has no jump."""
    check_writable(path)
    sequence = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    with atomic_path(path) as temporary:
        sequence[0].save(temporary, format="GIF", save_all=True, append_images=sequence[1:],
                         duration=frame_ms, loop=0, optimize=False, disposal=1)
    return path


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}
    if suffix not in formats:
        raise LatentctlError(f"cannot tell the image format of {path.name}",
                             hint="end the file name in .png, .jpg, .webp or .gif")
    return formats[suffix]


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def plot_curves(series: dict[str, Sequence[float]], path: Path, title: str, x_label: str = "step",
                x_values: Sequence[float] | None = None, size: tuple[int, int] = (720, 400)) -> Path:
    """Draw line curves (e.g. losses over training) as a PNG with axes, ticks and a legend."""
    width, height = size
    left, right, top, bottom = 60, 20, 36, 40
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    draw.font = _font()
    values = [v for curve in series.values() for v in curve if v == v and abs(v) != float("inf")]
    longest = max((len(curve) for curve in series.values()), default=0)
    draw.text((left, 10), title, fill="black")
    if not values or longest < 2:
        draw.text((left, height // 2), "not enough points yet", fill="gray")
        return save_image(picture, path)
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    xs = list(x_values) if x_values is not None else list(range(longest))
    x_low, x_high = xs[0], xs[-1] if xs[-1] != xs[0] else xs[0] + 1

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_low) / (x_high - x_low) * (width - left - right),
                top + (high - y) / (high - low) * (height - top - bottom))

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(5):  # y ticks
        y_value = low + (high - low) * i / 4
        _, y = to_pixel(x_low, y_value)
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((4, y - 6), f"{y_value:.3g}", fill="black")
    for i in range(5):  # x ticks
        x_value = x_low + (x_high - x_low) * i / 4
        x, _ = to_pixel(x_value, low)
        draw.line([x, height - bottom, x, height - bottom + 4], fill="black")
        draw.text((x - 10, height - bottom + 6), f"{x_value:.4g}", fill="black")
    draw.text((width // 2 - 20, height - 16), x_label, fill="black")
    for index, curve in enumerate(series.values()):
        points = [to_pixel(x, y) for x, y in zip(xs, curve, strict=False) if y == y and abs(y) != float("inf")]
        if len(points) > 1:
            draw.line(points, fill=PALETTE[index % len(PALETTE)], width=2)
    draw.rectangle([width - right - 126, top + 3, width - right - 4, top + 8 + 16 * len(series)],  # legend
                   fill="white", outline="gray")
    for index, name in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        draw.line([width - right - 120, top + 12 + 16 * index, width - right - 100, top + 12 + 16 * index],
                  fill=colour, width=3)
        draw.text((width - right - 94, top + 5 + 16 * index), name, fill="black")
    return save_image(picture, path)


def plot_bars(panels: dict[str, dict[str, dict[str, float]]], path: Path, title: str,
              panel_height: int = 220, width: int = 760) -> Path:
    """Draw grouped bar charts, one panel per metric: ``{panel: {group: {series: value}}}``, values in [0, 1]."""
    names = list(dict.fromkeys(series for groups in panels.values() for bars in groups.values() for series in bars))
    top_margin, left, right, bottom = 34 + 16 * ((len(names) + 1) // 2), 50, 16, 36
    height = top_margin + len(panels) * (panel_height + bottom)
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    draw.font = _font()
    draw.text((left, 8), title, fill="black")
    for index, name in enumerate(names):  # legend, two per line
        x, y = left + (index % 2) * 330, 28 + 16 * (index // 2)
        draw.rectangle([x, y + 2, x + 12, y + 12], fill=PALETTE[index % len(PALETTE)])
        draw.text((x + 18, y), name, fill="black")
    for row, (panel, groups) in enumerate(panels.items()):
        y0 = top_margin + row * (panel_height + bottom)
        y1 = y0 + panel_height
        draw.text((left, y0), panel, fill="black")
        draw.rectangle([left, y0 + 16, width - right, y1], outline="black")
        high = max([1.0] + [v for bars in groups.values() for v in bars.values()])
        for tick in range(5):
            value = high * tick / 4
            y = y1 - (y1 - y0 - 16) * value / high
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((4, y - 6), f"{value:.2f}", fill="black")
        slot = (width - left - right) / max(len(groups), 1)
        bar = slot * 0.8 / max(len(names), 1)
        for column, (group, bars) in enumerate(groups.items()):
            x0 = left + column * slot + slot * 0.1
            for index, name in enumerate(names):
                if name in bars:
                    top = y1 - (y1 - y0 - 16) * bars[name] / high
                    draw.rectangle([x0 + index * bar, top, x0 + (index + 1) * bar - 2, y1],
                                   fill=PALETTE[index % len(PALETTE)])
            draw.text((x0, y1 + 6), group, fill="black")
    return save_image(picture, path)

def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # Pillow's bundled scalable font needs FreeType; the bitmap fallback squeezes out spaces
        return ImageFont.load_default(size=13)
    except (OSError, ImportError):
        return ImageFont.load_default()


def caption_grid(picture: Image.Image, rows: Sequence[Sequence[str]], columns: Sequence[str] = ()) -> Image.Image:
    """Return ``picture`` (a grid from :func:`to_pil`) with each row's lines of text in a margin on its left
    and each column's heading above it, as many lines per row as its height holds."""
    font = _font()
    measure = ImageDraw.Draw(picture).textlength
    line = 14  # pixels per line of the 13 px font
    left = 8 + max((measure(text, font=font) for lines in rows for text in lines), default=0)
    top = line + 4 if columns else 0
    captioned = Image.new(picture.mode, (picture.width + int(left), picture.height + top),
                          255 if picture.mode == "L" else "white")
    captioned.paste(picture, (int(left), top))
    draw = ImageDraw.Draw(captioned)
    ink = 0 if picture.mode == "L" else "black"
    row_height = picture.height / max(len(rows), 1)
    for row, lines in enumerate(rows):
        for number, text in enumerate(lines[:max(1, int((row_height - 2) // line))]):
            draw.text((4, top + row * row_height + 3 + number * line), text, fill=ink, font=font)
    column_width = picture.width / max(len(columns), 1)
    for column, text in enumerate(columns):
        x = left + (column + 0.5) * column_width - measure(text, font=font) / 2
        draw.text((x, 2), text, fill=ink, font=font)
    return captioned


def save_walks(walks: torch.Tensor, path: Path, scale: int = 1, frame_ms: int = 120) -> Path:
    """Write walks (rows, frames, C, H, W): a PNG with one row per walk, or a GIF whose frame t shows
    every walk's t-th image in a square-ish grid. The suffix of ``path`` chooses."""
    rows, frames = walks.shape[:2]
    suffix = path.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise LatentctlError(f"cannot write walks to {path.name}", hint="end the output name in .png or .gif")
    if suffix == ".gif":
        by_frame = walks.transpose(0, 1)  # (frames, rows, C, H, W)
        columns = math.ceil(rows / math.ceil(math.sqrt(rows)))  # 2 walks stacked, 4 in 2x2, 8 in 3x3
        return save_gif([to_pil(frame, nrow=columns, scale=scale) for frame in by_frame], path, frame_ms=frame_ms)
    return save_image(to_pil(walks.flatten(0, 1), nrow=frames, scale=scale), path)
