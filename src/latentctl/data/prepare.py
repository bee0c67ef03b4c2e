"""The prepared CelebA cache: every image center-cropped and resized once, into one uint8 array on disk.

Decoding 200k JPEGs per epoch starves a GPU, so training reads only this cache, in ``<root>/prepared/`` (its
files: docs/celeba.md). It is staged under a hidden name and renamed into place, so an interrupted build
leaves no half cache, and rebuilt only when the source's fingerprint changes.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latentctl.data import PREPARED_CROP, PREPARED_SIZE
from latentctl.data.celeba import ATTR_TXT, CELEBA_ATTRIBUTES, SPLIT_NAMES, CelebA, load_celeba
from latentctl.data.mnist import read_marker
from latentctl.errors import LatentctlError
from latentctl.files import read_json, write_json

if TYPE_CHECKING:
    from PIL import Image

CACHE_VERSION = 1
PREPARED_DIR = "prepared"
CELEBA_WIDTH = 178  # the aligned images' width: crops are given in its pixels
DEFAULT_SIZE, DEFAULT_CROP = PREPARED_SIZE, PREPARED_CROP
CHUNK_SIZE = 256
IMAGES_FILE, ATTRIBUTES_FILE, SPLIT_FILE = "images.npy", "attributes.npy", "split.npy"
FILENAMES_FILE, META_FILE = "filenames.txt", "meta.json"

# on_progress(images done, images in all)
Progress = Callable[[int, int], None]


def cache_dir(root: Path, size: int = DEFAULT_SIZE, crop: int = DEFAULT_CROP) -> Path:
    """Return the folder of the cache of ``root``'s CelebA at ``size`` pixels from a ``crop``-pixel square."""
    return Path(root) / PREPARED_DIR / f"{size}px-crop{crop}"


def crop_box(width: int, height: int, crop: int = DEFAULT_CROP) -> tuple[int, int, int, int]:
    """Return the centred square (left, top, right, bottom) that ``crop`` of a 178-wide image covers."""
    side = min(round(crop * width / CELEBA_WIDTH), width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def crop_and_resize(image: Image.Image, size: int = DEFAULT_SIZE, crop: int = DEFAULT_CROP) -> Image.Image:
    """Return ``image`` as the cache holds it: RGB, the centred ``crop`` square, resized to ``size``.

    JPEGs are decoded at a reduced scale when that still leaves enough pixels (``Image.draft``), which
    makes decoding 2-4x faster for the same result to the eye.
    """
    from PIL import Image

    box = crop_box(*image.size, crop)
    side = box[2] - box[0]
    if image.format == "JPEG":
        full_width = image.size[0]
        needed = (math.ceil(image.size[0] * size / side), math.ceil(image.size[1] * size / side))
        image.draft("RGB", needed)
        scale = image.size[0] / full_width
        box = tuple(round(edge * scale) for edge in box)  # type: ignore[assignment]
    return image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS, box=box)


def resize_then_crop(image: Image.Image, size: int) -> Image.Image:
    """Return ``image`` as torchvision's ``Resize(size)`` then ``CenterCrop(size)`` make it (bilinear).

    The seed notebooks prepared faces this way; a classifier imported from them must see photos the same
    way to give the same outputs. The arithmetic (truncated long side, rounded crop offsets) is
    torchvision's.
    """
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    resized = (size, int(size * height / width)) if width <= height else (int(size * width / height), size)
    image = image.resize(resized, Image.Resampling.BILINEAR)
    left, top = int(round((resized[0] - size) / 2.0)), int(round((resized[1] - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


@dataclass
class PreparedCelebA:
    """The cache, opened: images memory-mapped, the rest in memory."""

    path: Path
    images: np.ndarray  # (N, 3, S, S) uint8, memory-mapped (copy-on-write: the file never changes)
    attributes: np.ndarray  # (N, 40) uint8 in {0, 1}
    split: np.ndarray  # (N,) int8: 0 train, 1 val, 2 test
    filenames: list[str]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def attribute_names(self) -> list[str]:
        return list(self.meta["attributes"])

    @property
    def not_rendered(self) -> list[str]:
        """Attributes a synthetic set labels but does not draw (empty for real data)."""
        return list((self.meta.get("synthetic") or {}).get("not_rendered", []))

    def indices(self, split: str) -> np.ndarray:
        """Return the row numbers of ``split`` ("train", "val", "test" or "all")."""
        if split == "all":
            return np.arange(len(self))
        return np.flatnonzero(self.split == SPLIT_NAMES.index(split))

    def select(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (images, attributes) of ``split``: a memory-mapped view when the rows are contiguous
        (the official split is), else a copy."""
        rows = self.indices(split)
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            return self.images[rows[0]:rows[-1] + 1], self.attributes[rows[0]:rows[-1] + 1]
        return self.images[rows], self.attributes[rows]

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the data a model was trained on: the source, the crop and size."""
        if self.meta.get("dataset") == "folder":  # an imported folder: its name, and where it came from
            return {"name": self.meta["name"], "images": len(self), "synthetic": False, "folder": True,
                    "sha256": self.meta["source_fingerprint"][:16], "size": self.meta["size"],
                    "crop": self.meta["crop"]}
        return {"name": "synthetic-faces" if self.meta.get("synthetic") else "celeba",
                "images": len(self), "synthetic": bool(self.meta.get("synthetic")),
                "sha256": self.meta["source_fingerprint"][:16], "size": self.meta["size"],
                "crop": self.meta["crop"]}


@dataclass
class PrepareResult:
    """What ``prepare_celeba`` did."""

    path: Path
    built: bool  # False when the cache was already current
    images: int
    seconds: float
    reason: str  # why it was (re)built, or "current"


def source_fingerprint(celeba: CelebA) -> str:
    """Return a hash of what the cache is made from: annotation files and each image's name, size, mtime."""
    digest = hashlib.sha256()
    for path in sorted(Path(celeba.root).glob("list_*")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    stats = {entry.name: entry.stat() for entry in os.scandir(celeba.image_dir) if entry.name.endswith(".jpg")}
    for name in celeba.filenames:
        found = stats.get(name)
        digest.update(f"{name}:{found.st_size}:{found.st_mtime_ns}\n".encode() if found else f"{name}:-\n".encode())
    return digest.hexdigest()


def _stale_reason(path: Path, size: int, crop: int, fingerprint: str) -> str | None:
    """Return why the cache in ``path`` cannot be used as it is, or None when it is current."""
    if not (path / META_FILE).is_file():
        return "no cache yet"
    try:
        meta = read_json(path / META_FILE)
    except LatentctlError:
        return "its meta.json is damaged"
    if meta.get("version") != CACHE_VERSION:
        return "it was made by another latentctl version"
    if (meta.get("size"), meta.get("crop")) != (size, crop):
        return "it was made with another size or crop"
    if meta.get("source_fingerprint") != fingerprint:
        return "the dataset changed since it was made"
    if any(not (path / name).is_file() for name in (IMAGES_FILE, ATTRIBUTES_FILE, SPLIT_FILE, FILENAMES_FILE)):
        return "files of it are missing"
    return None


def prepare_celeba(root: Path, size: int = DEFAULT_SIZE, crop: int = DEFAULT_CROP, *, workers: int | None = None,
                   force: bool = False, on_start: Callable[[str, int], None] | None = None,
                   on_progress: Progress | None = None) -> PrepareResult:
    """Build the cache of ``root``'s CelebA unless it is current; return what was done.

    Decodes in ``workers`` processes (default: one per CPU); ``on_start(reason, images)`` is called when a
    build starts. Raises LatentctlError, leaving any previous cache as it was, when the dataset is missing
    or an image cannot be decoded.
    """
    if size < 8 or crop < 8:
        raise LatentctlError(f"size {size} and crop {crop} must both be at least 8 pixels")
    started = time.perf_counter()
    celeba = load_celeba(Path(root))
    path = cache_dir(root, size, crop)
    fingerprint = source_fingerprint(celeba)
    reason = "--force" if force else _stale_reason(path, size, crop, fingerprint)
    if reason is None:
        return PrepareResult(path, False, len(celeba), time.perf_counter() - started, "current")
    if len(celeba) == 0:
        raise LatentctlError(f"{Path(root) / ATTR_TXT} lists no images", hint="import CelebA again")
    if on_start:
        on_start(reason, len(celeba))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        _build(celeba, staging, size, crop, workers, on_progress)
        synthetic, _ = read_marker(Path(root))
        write_json(staging / META_FILE, {
            "version": CACHE_VERSION, "dataset": "celeba", "size": size, "crop": crop, "count": len(celeba),
            "layout": celeba.layout, "source": str(Path(root).resolve()), "source_fingerprint": fingerprint,
            "attributes": list(CELEBA_ATTRIBUTES), "synthetic": synthetic,
            "splits": celeba.split_counts(), "seconds": round(time.perf_counter() - started, 2)})
        if path.exists():  # swap: the old cache goes aside first, so a crash leaves one complete cache or none
            old = path.with_name(f".{path.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PrepareResult(path, True, len(celeba), time.perf_counter() - started, reason)


def _build(celeba: CelebA, folder: Path, size: int, crop: int, workers: int | None,
           on_progress: Progress | None) -> None:
    """Write the arrays of the cache into ``folder``; images decoded in parallel straight into the memmap."""
    count = len(celeba)
    images = np.lib.format.open_memmap(folder / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(count, 3, size, size))
    del images  # created at full size on disk; the workers open and fill it
    np.save(folder / ATTRIBUTES_FILE, celeba.attributes)
    np.save(folder / SPLIT_FILE, celeba.split)
    (folder / FILENAMES_FILE).write_text("".join(name + "\n" for name in celeba.filenames), encoding="utf-8")

    jobs = [(str(folder / IMAGES_FILE), str(celeba.image_dir), start, celeba.filenames[start:start + CHUNK_SIZE],
             size, crop) for start in range(0, count, CHUNK_SIZE)]
    unreadable: list[tuple[str, str]] = []
    done = 0
    for found, chunk in _run_chunks(jobs, min(max(1, workers or os.cpu_count() or 1), len(jobs))):
        unreadable += found
        done += chunk
        if on_progress:
            on_progress(done, count)
    if unreadable:
        listed = ", ".join(f"{name} ({error})" for name, error in unreadable[:3])
        more = f" and {len(unreadable) - 3:,} more" if len(unreadable) > 3 else ""
        raise LatentctlError(f"{len(unreadable):,} CelebA images cannot be decoded: {listed}{more}",
                             hint="'latentctl data check celeba --deep' lists them all; import CelebA again "
                                  "to replace them")


def _run_chunks(jobs: list[Any], workers: int) -> Iterator[tuple[list[tuple[str, str]], int]]:
    """Yield ``_prepare_chunk``'s result for each job as it finishes, in ``workers`` processes."""
    if workers == 1:
        yield from map(_prepare_chunk, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: set[Future] = set()
        for job in jobs:  # a bounded window: progress stays live and Ctrl-C stops soon
            pending.add(pool.submit(_prepare_chunk, job))
            if len(pending) >= 4 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in finished)
        yield from (future.result() for future in pending)


def _prepare_chunk(job: tuple[str, str, int, list[str], int, int]) -> Any:
    """Decode, crop and resize one chunk of images into its rows of the memmap; return the (name, error)
    of each unreadable image and how many images the chunk had."""
    from PIL import Image

    images_path, image_dir, start, names, size, crop = job
    images = np.load(images_path, mmap_mode="r+")
    unreadable = []
    for offset, name in enumerate(names):
        try:
            with Image.open(os.path.join(image_dir, name)) as image:
                picture = crop_and_resize(image, size, crop)
            images[start + offset] = np.asarray(picture).transpose(2, 0, 1)
        except Exception as error:  # noqa: BLE001 - any decoding failure is reported by name
            unreadable.append((name, f"{type(error).__name__}: {error}"))
    images.flush()
    del images
    return unreadable, len(names)


def load_prepared(root: Path, size: int = DEFAULT_SIZE, crop: int = DEFAULT_CROP) -> PreparedCelebA:
    """Open the cache of ``root``'s CelebA as it is on disk (whether current or not is ``prepare_celeba``'s job).

    Raises LatentctlError when there is no complete cache.
    """
    path = cache_dir(root, size, crop)
    if not (path / META_FILE).is_file():
        raise LatentctlError(f"CelebA in {root} is not prepared at {size}px (crop {crop})",
                             hint=f"run 'latentctl data prepare celeba --size {size} --crop {crop}'")
    meta = read_json(path / META_FILE)
    rebuild = ("import the folder again with 'latentctl data import folder --force'" if meta.get("dataset") == "folder"
               else "rebuild it with 'latentctl data prepare celeba --force'")
    try:
        # copy-on-write: torch wants writable arrays, and the file must never change
        images = np.load(path / IMAGES_FILE, mmap_mode="c", allow_pickle=False)
        attributes = np.load(path / ATTRIBUTES_FILE, allow_pickle=False)
        split = np.load(path / SPLIT_FILE, allow_pickle=False)
        filenames = (path / FILENAMES_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as error:
        raise LatentctlError(f"the prepared images in {path} are damaged ({error})", hint=rebuild) from None
    count = meta.get("count")
    shapes_ok = (images.shape == (count, 3, size, size) and attributes.shape == (count, len(meta.get("attributes", ())))
                 and split.shape == (count,) and len(filenames) == count)
    if not shapes_ok or images.dtype != np.uint8:
        raise LatentctlError(f"the prepared images in {path} are damaged (their arrays disagree with meta.json)",
                             hint=rebuild)
    return PreparedCelebA(path, images, attributes, split, filenames, meta)


def ensure_prepared(root: Path, size: int = DEFAULT_SIZE, crop: int = DEFAULT_CROP,
                    on_start: Callable[[str, int], None] | None = None,
                    on_progress: Progress | None = None) -> PreparedCelebA:
    """Return the cache of ``root``'s CelebA, building it first if it is missing or stale.

    ``on_start(reason, images)`` is called when a build starts, so a command can say why it waits.
    """
    prepare_celeba(root, size, crop, on_start=on_start, on_progress=on_progress)
    return load_prepared(root, size, crop)
