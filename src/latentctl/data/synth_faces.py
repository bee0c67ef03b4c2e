"""Synthetic CelebA: cartoon faces drawn from their 40 attributes, written in CelebA's own file layout.

For machines without network access, and for tests. Attributes are sampled with CelebA-like base rates and
correlations, then drawn with Pillow on CelebA's aligned canvas; those not in ``RENDERED_ATTRIBUTES`` are
labels only (``not_rendered`` in ``SYNTHETIC.json``). Chunk ``k``'s attributes come from the seed ``(seed, k)``
and face ``i``'s drawing from ``(seed, i)``, so the files do not depend on how many processes draw them.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latentctl import __version__
from latentctl.data import SYNTH_FACES
from latentctl.data.celeba import ATTR_TXT, CELEBA_ATTRIBUTES, IMAGE_DIR, OFFICIAL_SPLIT_COUNTS, PARTITION_TXT
from latentctl.data.mnist import SYNTHETIC_MARKER
from latentctl.errors import LatentctlError
from latentctl.files import atomic_path, write_json

if TYPE_CHECKING:
    from PIL import Image

# on_progress(faces done, faces in all), called after each chunk
SynthProgress = Callable[[int, int], None]

RENDERED_ATTRIBUTES = (
    "Arched_Eyebrows", "Bald", "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Pale_Skin", "Receding_Hairline", "Rosy_Cheeks", "Smiling",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necktie", "Young",
)
IMAGE_WIDTH, IMAGE_HEIGHT = 178, 218  # CelebA's aligned and cropped images
CHUNK_SIZE = 256
JPEG_QUALITY = 90

_COLUMN = {name: index for index, name in enumerate(CELEBA_ATTRIBUTES)}
# Base rates of the attributes with no dependence modelled, as measured on CelebA.
_INDEPENDENT_RATES = {
    "Bags_Under_Eyes": 0.20, "Big_Lips": 0.24, "Big_Nose": 0.23, "Blurry": 0.05, "Bushy_Eyebrows": 0.14,
    "Narrow_Eyes": 0.115, "Oval_Face": 0.28, "Pale_Skin": 0.043, "Pointy_Nose": 0.28, "Wearing_Hat": 0.048,
}
# (women, men) rates of the attributes that depend only on sex.
_RATES_BY_SEX = {
    "Arched_Eyebrows": (0.44, 0.03), "Bangs": (0.21, 0.07), "Chubby": (0.03, 0.096), "Double_Chin": (0.03, 0.07),
    "Eyeglasses": (0.04, 0.10), "Receding_Hairline": (0.06, 0.107), "Rosy_Cheeks": (0.11, 0.005),
    "Wearing_Earrings": (0.32, 0.01), "Wearing_Necklace": (0.20, 0.01), "Wearing_Necktie": (0.002, 0.16),
    "Wearing_Lipstick": (0.73, 0.112),  # about 90% of lipstick wearers are women
}
# (women, men) rates of each hair colour among faces that are neither bald nor grey; the rest are other
# colours (auburn, red, dark ash) that CelebA has no attribute for.
_HAIR_COLOUR_RATES = {"Black_Hair": (0.22, 0.29), "Blond_Hair": (0.26, 0.03), "Brown_Hair": (0.23, 0.18)}
_HAIR_RGB = {"Black_Hair": ((20, 18, 18), (45, 35, 30)), "Blond_Hair": ((215, 180, 105), (245, 225, 160)),
             "Brown_Hair": ((90, 55, 30), (135, 90, 50)), "Gray_Hair": ((165, 165, 165), (225, 225, 220)),
             "other": ((70, 40, 30), (125, 55, 30), (170, 75, 35))}
_SKIN_RGB = ((235, 200, 170), (225, 180, 145), (190, 140, 100), (140, 95, 65), (95, 62, 45))  # light to dark
_PALE_SKIN_RGB = ((250, 232, 222), (240, 218, 205))


def synth_faces(root: Path, n: int = SYNTH_FACES, seed: int = 0, on_progress: SynthProgress | None = None, *,
                workers: int | None = None, force: bool = False) -> list[Path]:
    """Write ``n`` synthetic faces into ``root`` in CelebA's layout and return the files written besides the
    images: the attribute list, the partition list, ``SYNTHETIC.json`` and the image folder.

    Refuses a folder holding a CelebA that is not synthetic unless ``force``. Same seed, same bytes;
    ``workers`` processes draw chunks in parallel (default: one per CPU), without changing the result.
    """
    if n < 1:
        raise LatentctlError("need at least one face", hint="pass --n 1 or more")
    synthetic = (root / SYNTHETIC_MARKER).is_file()
    found = [name for name in (IMAGE_DIR, ATTR_TXT) if (root / name).exists()]
    if found and not synthetic and not force:
        raise LatentctlError(f"{root} already holds CelebA files ({', '.join(found)})",
                             hint="pass --force to replace them with synthetic faces, or choose another --root")
    images = root / IMAGE_DIR
    images.mkdir(parents=True, exist_ok=True)
    if synthetic:
        _remove_stale(root, n)
    # The marker goes first, so a folder left half-written by a crash is still known to be synthetic.
    marker = {"generator": "latentctl.data.synth_faces", "latentctl_version": __version__, "seed": seed, "n": n,
              "rendered": [name for name in CELEBA_ATTRIBUTES if name in RENDERED_ATTRIBUTES],
              "not_rendered": [name for name in CELEBA_ATTRIBUTES if name not in RENDERED_ATTRIBUTES]}
    write_json(root / SYNTHETIC_MARKER, marker)

    chunks = [(seed, start, min(CHUNK_SIZE, n - start), str(images)) for start in range(0, n, CHUNK_SIZE)]
    workers = min(workers or os.cpu_count() or 1, len(chunks))
    attributes = np.empty((n, len(CELEBA_ATTRIBUTES)), dtype=np.int8)
    done = 0
    with ProcessPoolExecutor(workers) if workers > 1 else _InProcess() as pool:
        for (_, start, count, _), rows in zip(chunks, pool.map(_draw_chunk, chunks), strict=True):
            attributes[start:start + count] = rows
            done += count
            if on_progress is not None:
                on_progress(done, n)

    names = [image_name(index) for index in range(n)]
    with atomic_path(root / ATTR_TXT) as temporary:
        temporary.write_text(format_attributes(names, attributes), encoding="ascii")
    with atomic_path(root / PARTITION_TXT) as temporary:
        temporary.write_text("".join(f"{name} {split}\n" for name, split in zip(names, partition(n), strict=True)),
                             encoding="ascii")
    return [root / ATTR_TXT, root / PARTITION_TXT, root / SYNTHETIC_MARKER, images]


def image_name(index: int) -> str:
    """Return CelebA's file name of the image at 0-based ``index``: ``000001.jpg`` for 0."""
    return f"{index + 1:06d}.jpg"


def format_attributes(names: list[str], attributes: np.ndarray) -> str:
    """Return ``list_attr_celeba.txt``'s text: the count, the 40 names, then each name and its 1 / -1 values."""
    lines = [str(len(names)), " ".join(CELEBA_ATTRIBUTES)]
    # CelebA right-aligns each value in two characters after a space: "000001.jpg -1  1  1 -1 ..."
    lines += [name + "".join(f" {value:2d}" for value in row) for name, row in zip(names, attributes.tolist(),
                                                                                    strict=True)]
    return "\n".join(lines) + "\n"


def partition(n: int) -> np.ndarray:
    """Return the split of each of ``n`` images, 0 train, 1 val, 2 test: contiguous, in CelebA's proportions."""
    sizes = np.array(list(OFFICIAL_SPLIT_COUNTS.values()))
    ends = np.round(np.cumsum(sizes) / sizes.sum() * n).astype(int)
    return np.searchsorted(ends, np.arange(n), side="right").astype(np.int8)


def split_counts(n: int) -> dict[str, int]:
    """Return how many of ``n`` images ``partition`` puts in each split: ``{"train": ..., "val": ..., "test": ...}``."""
    counts = np.bincount(partition(n), minlength=len(OFFICIAL_SPLIT_COUNTS))
    return {name: int(count) for name, count in zip(OFFICIAL_SPLIT_COUNTS, counts, strict=True)}


def sample_attributes(n: int, seed: int = 0) -> np.ndarray:
    """Return the attributes of the first ``n`` faces ``synth_faces`` makes with ``seed``: int8 (n, 40) of 1 / -1.

    Drawing nothing, this is how the label statistics are checked on many faces quickly.
    """
    return np.concatenate([_sample_chunk(seed, start, min(CHUNK_SIZE, n - start))
                           for start in range(0, n, CHUNK_SIZE)])


def _sample_chunk(seed: int, start: int, count: int) -> np.ndarray:
    """Return the attributes of faces ``start`` to ``start + count``, (count, 40) of 1 / -1; ``start`` is a
    multiple of CHUNK_SIZE."""
    wanted, count = count, CHUNK_SIZE  # always a whole chunk, so face i's attributes do not depend on n
    rng = np.random.default_rng([seed, start // CHUNK_SIZE, 0])
    has = np.zeros((count, len(CELEBA_ATTRIBUTES)), dtype=bool)

    def set_rate(name: str, rate: np.ndarray | float, where: np.ndarray | bool = True) -> np.ndarray:
        has[:, _COLUMN[name]] = (rng.random(count) < rate) & where
        return has[:, _COLUMN[name]]

    male = set_rate("Male", 0.42)
    young = set_rate("Young", np.where(male, 0.65, 0.86))
    for name, rate in _INDEPENDENT_RATES.items():
        set_rate(name, rate)
    for name, (women, men) in _RATES_BY_SEX.items():
        set_rate(name, np.where(male, men, women))
    lipstick = has[:, _COLUMN["Wearing_Lipstick"]]
    set_rate("Heavy_Makeup", np.where(lipstick & ~male, 0.85, 0.02))
    set_rate("Attractive", np.where(young, np.where(male, 0.40, 0.75), 0.12))
    smiling = set_rate("Smiling", 0.48)
    set_rate("Mouth_Slightly_Open", np.where(smiling, 0.70, 0.27))
    set_rate("High_Cheekbones", np.where(smiling, 0.75, 0.17))

    bald = set_rate("Bald", np.where(male, np.where(young, 0.02, 0.10), 0.003))
    has[bald, _COLUMN["Bangs"]] = False
    # A receding hairline cannot show under bangs or on a bald head (and rarely does in CelebA): it would be
    # a label the picture contradicts.
    has[bald | has[:, _COLUMN["Bangs"]], _COLUMN["Receding_Hairline"]] = False
    grey = set_rate("Gray_Hair", np.where(young, 0.007, 0.16), ~bald)
    colour = rng.random(count)
    floor = np.zeros(count)
    for name, (women, men) in _HAIR_COLOUR_RATES.items():  # at most one colour: disjoint slices of [0, 1)
        ceiling = floor + np.where(male, men, women)
        has[:, _COLUMN[name]] = (colour >= floor) & (colour < ceiling) & ~bald & ~grey
        floor = ceiling
    texture = rng.random(count)
    has[:, _COLUMN["Wavy_Hair"]] = (texture < 0.32) & ~bald
    has[:, _COLUMN["Straight_Hair"]] = (texture >= 0.32) & (texture < 0.53) & ~bald

    # Facial hair, men only: ~15% goatee, ~10% moustache (often with a goatee), ~21% a full beard.
    goatee = set_rate("Goatee", 0.15, male)
    moustache = set_rate("Mustache", np.where(goatee, 0.35, 0.056), male)
    beard = (rng.random(count) < 0.26) & male & ~goatee & ~moustache
    has[:, _COLUMN["No_Beard"]] = ~(goatee | moustache | beard)
    set_rate("5_o_Clock_Shadow", 0.34, male & ~beard)
    set_rate("Sideburns", np.where(beard | goatee, 0.3, 0.03), male)
    return np.where(has[:wanted], 1, -1).astype(np.int8)


class _InProcess:
    """A stand-in for a process pool that maps in this process: one worker needs no pool."""

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, function: Callable[[Any], Any], items: list[Any]) -> Any:
        return map(function, items)


def _draw_chunk(job: tuple[int, int, int, str]) -> np.ndarray:
    """Draw and save one chunk of faces; return their attributes, (count, 40)."""
    seed, start, count, folder = job
    attributes = _sample_chunk(seed, start, count)
    for offset, row in enumerate(attributes):
        index = start + offset
        jpeg = encode_jpeg(draw_face(row, np.random.default_rng([seed, index, 1])))
        (Path(folder) / image_name(index)).write_bytes(jpeg)
    return attributes


def encode_jpeg(image: Image.Image) -> bytes:
    """Return the JPEG bytes of a PIL image, as CelebA stores it."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def draw_face(attributes: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Return one face drawn from its 40 attributes (1 / -1, CELEBA_ATTRIBUTES order): RGB, 178x218."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter  # noqa: F811 - the module, at run time

    has = {name: attributes[index] > 0 for index, name in enumerate(CELEBA_ATTRIBUTES)}
    male, young = has["Male"], has["Young"]

    def uniform(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    def mix(colours: tuple[tuple[int, int, int], ...], power: float = 1.0) -> tuple[int, int, int]:
        """A random colour on the path through ``colours``; ``power`` > 1 favours the first ones."""
        position = float(rng.random()) ** power * (len(colours) - 1)
        low = min(int(position), len(colours) - 2)
        weight = position - low
        return tuple(int(a + (b - a) * weight) for a, b in zip(colours[low], colours[low + 1], strict=True))

    def shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
        return tuple(max(0, min(255, int(channel * factor))) for channel in colour)

    skin = mix(_PALE_SKIN_RGB) if has["Pale_Skin"] else mix(_SKIN_RGB, power=2.0)  # CelebA is mostly light
    hair_name = next((name for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair") if has[name]), "other")
    hair = mix(_HAIR_RGB[hair_name])
    background = tuple(int(v) for v in rng.integers(40, 235, 3))
    image = Image.new("RGB", (IMAGE_WIDTH, IMAGE_HEIGHT), background)
    draw = ImageDraw.Draw(image)

    # Geometry: the face is an ellipse around (cx, cy); CelebA's alignment keeps it nearly fixed.
    cx, cy = 89 + uniform(-4, 4), 122 + uniform(-4, 4)
    half_width = (37 if male else 33) * uniform(0.95, 1.05) * (1.22 if has["Chubby"] else 1.0)
    half_height = 52 * uniform(0.95, 1.05)
    top, chin = cy - half_height, cy + half_height
    eye_y = cy - 11 + uniform(-2, 2)
    mouth_y = cy + 30 + uniform(-2, 2)

    # Shoulders and neck, then any tie.
    clothes = tuple(int(v) for v in rng.integers(20, 230, 3))
    draw.ellipse([cx - 85, chin + 8, cx + 85, chin + 110], fill=clothes)
    draw.rectangle([cx - half_width * 0.5, cy + 20, cx + half_width * 0.5, chin + 20], fill=shade(skin, 0.85))
    if has["Wearing_Necktie"]:
        draw.polygon([(cx - 14, chin + 10), (cx, chin + 22), (cx + 14, chin + 10)], fill=(240, 240, 240))
        tie = tuple(int(v) for v in rng.integers(20, 200, 3))
        draw.polygon([(cx - 5, chin + 14), (cx + 5, chin + 14), (cx + 8, IMAGE_HEIGHT), (cx - 8, IMAGE_HEIGHT)],
                     fill=tie)

    # Hair behind the head: long for most women, short for men; none when bald.
    if not has["Bald"]:
        if male:
            draw.ellipse([cx - half_width - 5, top - 10, cx + half_width + 5, cy + 15], fill=hair)
        else:
            length = uniform(40, 90)
            draw.ellipse([cx - half_width - 14, top - 12, cx + half_width + 14, cy + 40], fill=hair)
            draw.rectangle([cx - half_width - 14, cy, cx + half_width + 14, cy + length], fill=hair)

    # Ears, then the face: square-jawed for men, tapering to the chin for women.
    for side in (-1, 1):
        ear_x = cx + side * half_width
        draw.ellipse([ear_x - 7, eye_y - 6, ear_x + 7, eye_y + 20], fill=shade(skin, 0.93))
        if has["Wearing_Earrings"]:
            draw.ellipse([ear_x - 3, eye_y + 20, ear_x + 3, eye_y + 26], fill=(230, 190, 60))
    draw.ellipse([cx - half_width, top, cx + half_width, chin], fill=skin)
    if male:
        draw.polygon([(cx - half_width, cy), (cx - half_width * 0.92, chin - 14), (cx - half_width * 0.45, chin),
                      (cx + half_width * 0.45, chin), (cx + half_width * 0.92, chin - 14), (cx + half_width, cy)],
                     fill=skin)

    # Facial hair.
    beard_colour = shade(hair, 0.8) if hair_name != "Gray_Hair" else hair
    if not has["No_Beard"] and not (has["Goatee"] or has["Mustache"]):  # a full beard along the jaw
        left = [(0.6, mouth_y - 6), (1.0, cy + 5), (0.92, chin - 12), (0.45, chin + 2)]  # (half widths, y)
        draw.polygon([(cx - half_width * x, y) for x, y in left] + [(cx + half_width * x, y) for x, y in left[::-1]],
                     fill=beard_colour)
    if has["Goatee"]:
        draw.polygon([(cx - 13, mouth_y + 6), (cx + 13, mouth_y + 6), (cx + 9, chin + 3), (cx - 9, chin + 3)],
                     fill=beard_colour)

    # Hair on top: a cap down to the hairline, bangs down to the eyebrows; a bald head keeps a fringe.
    if has["Bald"]:
        for side in (-1, 1):
            x = cx + side * half_width
            draw.ellipse([x - 6, eye_y - 22, x + 6, eye_y + 8], fill=shade(hair, 0.9) if young else (170, 170, 170))
        draw.ellipse([cx - 12, top + 6, cx + 8, top + 16], fill=shade(skin, 1.12))  # the shine of a bare scalp
    else:
        hairline = top + (6 if has["Receding_Hairline"] else 16) * uniform(0.85, 1.15)
        draw.chord([cx - half_width - 3, top - 8, cx + half_width + 3, 2 * hairline - top + 8], 180, 360, fill=hair)
        if has["Bangs"]:  # a fringe with a jagged edge down to the eyebrows, well below any hairline
            fringe = eye_y - 13
            left, right = cx - half_width * 0.92, cx + half_width * 0.92
            points = 13  # six teeth
            edge = [(left + (right - left) * k / (points - 1), fringe + (4 if k % 2 else 0)) for k in range(points)]
            draw.polygon([(left, top + 8), (right, top + 8), *reversed(edge)], fill=hair)

    # Eyes, eyebrows, eye shadow.
    eye_dx = 19 * uniform(0.93, 1.07)
    eye_half_height = 1.8 if has["Narrow_Eyes"] else 5.0
    iris = mix(((40, 25, 15), (90, 60, 30), (70, 110, 140)))
    brow = shade(hair, 0.7) if hair_name not in ("Blond_Hair", "Gray_Hair") else shade(hair, 0.75)
    if has["Bald"]:
        brow = (60, 45, 35)
    for side in (-1, 1):
        x = cx + side * eye_dx
        if has["Heavy_Makeup"]:
            draw.ellipse([x - 11, eye_y - 9, x + 11, eye_y + 3], fill=(120, 70, 120))
        draw.ellipse([x - 9, eye_y - eye_half_height, x + 9, eye_y + eye_half_height], fill=(245, 245, 240))
        draw.ellipse([x - 3.5, eye_y - min(3.5, eye_half_height), x + 3.5, eye_y + min(3.5, eye_half_height)],
                     fill=iris)
        arch = 9 if has["Arched_Eyebrows"] else 1
        brow_y = eye_y - 10
        draw.line([(x - 10, brow_y), (x + side * 3, brow_y - arch), (x + 10, brow_y)], fill=brow,
                  width=8 if has["Bushy_Eyebrows"] else 2)
        if has["Rosy_Cheeks"]:
            draw.ellipse([x - 9, eye_y + 12, x + 9, eye_y + 24], fill=shade((235, 120, 120), 0.95))

    # Nose.
    nose_half_width = 8 if has["Big_Nose"] else 5
    nose_y = eye_y + 22
    draw.line([(cx, eye_y + 4), (cx - 1, nose_y)], fill=shade(skin, 0.8), width=2)
    draw.chord([cx - nose_half_width, nose_y - 4, cx + nose_half_width, nose_y + 4], 0, 180, fill=shade(skin, 0.7))

    # Mouth: lips red with lipstick; an open mouth shows dark; a smile curves up at the corners.
    lips = (185, 25, 45) if has["Wearing_Lipstick"] else shade((skin[0], int(skin[1] * 0.8), int(skin[2] * 0.8)), 0.85)
    mouth_half_width = 14 * uniform(0.9, 1.1)
    lip_height = 6 if has["Big_Lips"] else 2.5
    if has["Mouth_Slightly_Open"]:
        depth = 12 if has["Smiling"] else 8
        box = [cx - mouth_half_width, mouth_y - depth / 2 - 2, cx + mouth_half_width, mouth_y + depth / 2 + 4]
        draw.ellipse(box, fill=lips)
        draw.ellipse([box[0] + 3, box[1] + lip_height, box[2] - 3, box[3] - lip_height], fill=(45, 15, 20))
        if has["Smiling"]:
            draw.rectangle([box[0] + 6, box[1] + lip_height, box[2] - 6, box[1] + lip_height + 3], fill=(235, 235, 225))
    elif has["Smiling"]:
        draw.arc([cx - mouth_half_width, mouth_y - 14, cx + mouth_half_width, mouth_y + 4], 20, 160, fill=lips,
                 width=int(lip_height * 1.6))
    else:
        draw.line([(cx - mouth_half_width, mouth_y), (cx + mouth_half_width, mouth_y)], fill=lips,
                  width=int(lip_height * 1.6))
    if has["Mustache"]:
        draw.polygon([(cx - mouth_half_width - 4, mouth_y - 2), (cx, mouth_y - 14),
                      (cx + mouth_half_width + 4, mouth_y - 2), (cx, mouth_y - 6)], fill=shade(beard_colour, 0.8))

    # Age: lines on the forehead, beside the nose and under the eyes.
    if not young:
        line = shade(skin, 0.72)
        if has["Bald"] or has["Receding_Hairline"]:
            for step in range(3):
                y = eye_y - 22 - step * 5
                draw.arc([cx - 20, y, cx + 20, y + 8], 200, 340, fill=line, width=1)
        for side in (-1, 1):
            draw.line([(cx + side * 9, nose_y + 2), (cx + side * (mouth_half_width + 4), mouth_y + 3)], fill=line,
                      width=2)
            draw.arc([cx + side * eye_dx - 8, eye_y + 2, cx + side * eye_dx + 8, eye_y + 10], 20, 160, fill=line)

    if has["Eyeglasses"]:
        # dark frames, or light ones on dark skin: glasses must stand out from the face they are on
        frame = (20, 20, 20) if rng.random() < 0.7 or sum(skin) > 450 else (225, 205, 120)
        for side in (-1, 1):
            x = cx + side * eye_dx
            draw.rounded_rectangle([x - 13, eye_y - 9, x + 13, eye_y + 9], radius=5, outline=frame, width=4)
            draw.line([(x + side * 13, eye_y - 4), (cx + side * (half_width + 3), eye_y - 6)], fill=frame, width=3)
        draw.line([(cx - eye_dx + 13, eye_y - 2), (cx + eye_dx - 13, eye_y - 2)], fill=frame, width=3)

    if has["Wearing_Hat"]:
        hat = tuple(int(v) for v in rng.integers(20, 230, 3))
        brim_y = top + 18 + uniform(-3, 5)
        draw.rectangle([cx - half_width + 2, top - 38, cx + half_width - 2, brim_y], fill=hat)
        draw.ellipse([cx - half_width - 22, brim_y - 7, cx + half_width + 22, brim_y + 7], fill=shade(hat, 0.8))

    # A camera's softness and grain; Blurry faces are out of focus. (A box blur costs a third of a Gaussian.)
    image = image.filter(ImageFilter.BoxBlur(uniform(2.5, 3.5) if has["Blurry"] else uniform(0.6, 1.0)))
    dx, dy = (int(v) for v in rng.integers(0, 64, 2))
    return ImageChops.add(image, _grain().crop((dx, dy, dx + IMAGE_WIDTH, dy + IMAGE_HEIGHT)), offset=-128)


@functools.cache
def _grain() -> Image.Image:
    """Return a field of sensor noise around 128, 64 px larger than an image each way; a random window of it
    is added to each face, as drawing fresh noise per face would cost more than the face."""
    from PIL import Image  # noqa: F811 - the module, at run time

    noise = np.random.default_rng(20240601).normal(128, 4, (IMAGE_HEIGHT + 64, IMAGE_WIDTH + 64, 3))
    return Image.fromarray(np.clip(noise.round(), 0, 255).astype(np.uint8))


def _remove_stale(root: Path, n: int) -> None:
    """Remove what an earlier synthetic run left that this one will not overwrite: lists, extra images."""
    for name in (ATTR_TXT, PARTITION_TXT):
        (root / name).unlink(missing_ok=True)
    for path in (root / IMAGE_DIR).glob("[0-9]*.jpg"):
        if path.stem.isdigit() and int(path.stem) > n:
            path.unlink()
