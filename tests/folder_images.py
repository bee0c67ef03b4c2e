"""A tiny folder of the user's own images, made on the fly: nested, mixed formats and sizes, and the files an
import must skip (a corrupt one, a tiny one, a duplicate)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = (("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"))
ATTRIBUTES = ("Smiling", "Eyeglasses")


def make_folder(root: Path, n: int = 60, seed: int = 0) -> Path:
    """Write ``n`` images (each a coloured disc on a background, 40-120 px, some not square) under ``root`` in
    nested folders, plus a corrupt file, a 4x4 image and a duplicate; and ``labels.csv`` beside the folder with
    a 0/1 column per attribute (Smiling: a bright disc; Eyeglasses: -1/1, a wide image). Return ``root``."""
    rng = np.random.default_rng(seed)
    rows = ["file,Smiling,Eyeglasses"]
    for index in range(n):
        width, height = int(rng.integers(40, 121)), int(rng.integers(40, 121))
        smiling, wide = index % 2, int(width > height)
        ys, xs = np.mgrid[:height, :width]
        disc = (xs - width / 2) ** 2 + (ys - height / 2) ** 2 < (min(width, height) / 3) ** 2
        pixels = np.empty((height, width, 3), dtype=np.uint8)
        pixels[:] = rng.integers(0, 120, 3)
        pixels[disc] = rng.integers(200, 256, 3) if smiling else rng.integers(60, 140, 3)
        extension, format_name = FORMATS[index % 3]
        path = root / f"set{index % 4}" / ("deep" if index % 5 == 0 else "") / f"img{index:03d}.{extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, format_name)
        rows.append(f"{path.relative_to(root).as_posix()},{smiling},{1 if wide else -1}")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("RGB", (4, 4), (255, 0, 0)).save(root / "tiny.png")
    shutil.copyfile(root / "set0" / "deep" / "img000.png", root / "set3" / "copy-of-000.png")
    rows += ["broken.jpg,0,1", "tiny.png,1,1", "set3/copy-of-000.png,0,1"]
    (root.parent / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
