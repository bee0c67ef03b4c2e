"""Your own images as a dataset: a folder of JPEG/PNG/WebP files, optionally with binary labels from a CSV.

``import_folder`` decodes every image once, centre-cropped to a square and resized, into the same uint8 cache
that a prepared CelebA is (``latentctl.data.prepare``), so training, classifying and checking read it unchanged.
Bad files (unreadable, smaller than ``MIN_SIDE``, the same bytes as an earlier file) are listed and skipped,
never fatal. The dataset lives in ``<root>/`` (``$LATENTCTL_HOME/data/NAME`` by default): ``FOLDER.json`` says
what was imported, ``prepared/<size>px-crop178/`` holds the cache (crop 178 in CelebA's terms is an image's
whole shorter side). docs/data.md shows the files.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latentctl.data import PREPARED_SIZE
from latentctl.data.celeba import SPLIT_NAMES
from latentctl.data.prepare import (
    ATTRIBUTES_FILE,
    CACHE_VERSION,
    CELEBA_WIDTH,
    FILENAMES_FILE,
    IMAGES_FILE,
    META_FILE,
    PREPARED_DIR,
    SPLIT_FILE,
    PreparedCelebA,
    cache_dir,
    crop_and_resize,
    load_prepared,
)
from latentctl.errors import LatentctlError, UsageError
from latentctl.files import read_json, write_json

if TYPE_CHECKING:
    from PIL import Image

FOLDER_MARKER = "FOLDER.json"
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
# Images whose shorter side is below this many pixels are skipped: thumbnails and icons, which would be blown
# up several times to reach even a 64 px training image and teach the generator blur.
MIN_SIDE = 32
VAL_EVERY = 10  # one image in ten (chosen by its content hash, so stable as images are added) is validation
EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how a camera held the picture
CROP = CELEBA_WIDTH  # crop_and_resize's whole-width crop: the centred square of the shorter side, for any image
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RESERVED = ("mnist", "celeba")  # names of the datasets latentctl downloads
IMPORT_HINT = "run 'latentctl data import folder PATH --name NAME' to make one from a folder of images"

Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass
class FolderImport:
    """What ``import_folder`` did."""

    source: Path
    root: Path
    name: str
    size: int
    images: int  # imported
    attributes: list[str]  # the labels' columns, in order (none without --labels)
    splits: dict[str, int]
    skipped: list[dict[str, str]]  # {file, reason}, every one, in file order
    unmatched_rows: list[str]  # rows of the labels file that name no image found
    cache: Path
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"dataset": "folder", "name": self.name, "source": str(self.source), "root": str(self.root),
                "cache": str(self.cache), "size": self.size, "imported": self.images, "attributes": self.attributes,
                "splits": self.splits, "skipped": self.skipped, "unmatched_rows": self.unmatched_rows,
                "seconds": round(self.seconds, 3)}


def check_name(name: str) -> str:
    """Return ``name`` if it can name an imported dataset (a folder name, not one of latentctl's own); else raise
    a UsageError."""
    if not NAME_PATTERN.match(name):
        raise UsageError(f"{name!r} cannot name a dataset: use letters, digits, '.', '_' and '-' (up to 64, first a "
                         "letter or digit)", option="'--name'")
    if name.lower() in RESERVED:
        raise UsageError(f"{name!r} is latentctl's own dataset; give your folder another name", option="'--name'")
    return name


def is_folder_dataset(root: Path) -> bool:
    """Whether ``root`` holds a dataset imported by ``import_folder``."""
    return (Path(root) / FOLDER_MARKER).is_file()


def image_files(source: Path) -> list[str]:
    """Return the images under ``source`` (recursive, hidden files and folders left out) as sorted POSIX paths
    relative to it."""
    found = []
    for folder, subfolders, names in os.walk(source):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                found.append(Path(folder, name).relative_to(source).as_posix())
    return sorted(found)


def read_labels(path: Path, files: list[str]) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    """Return (attribute names, file -> (A,) uint8 0/1 row, rows naming no file) of a labels CSV.

    The CSV has a ``file`` column (a path relative to the folder, or a bare file name where that is unique
    in the folder) and one column per attribute holding 0/1 or -1/1. Raises LatentctlError for anything else.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={"file": str})
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise LatentctlError(f"{path} is not a readable CSV file ({str(error).strip().splitlines()[0]})",
                             hint="give --labels a CSV with a 'file' column and 0/1 attribute columns") from None
    if "file" not in frame.columns:
        raise LatentctlError(f"{path} has no 'file' column (its columns: {', '.join(map(str, frame.columns))})",
                             hint="name the column of image paths 'file'")
    names = [str(column) for column in frame.columns if column != "file"]
    for name in names:
        column = frame[name].to_numpy()
        good = np.isin(column, (0, 1, -1)) if column.dtype.kind in "iuf" else np.zeros(len(column), dtype=bool)
        if not good.all():
            row = int(np.flatnonzero(~good)[0])
            raise LatentctlError(
                f"{path}: column {name!r} holds {column[row]!r} in row {row + 2}; attributes are 0/1 (or -1/1)",
                hint="face models take binary attributes only: turn a class column into one 0/1 column per class")
    rows = (frame[names].to_numpy(dtype=np.int64) == 1).astype(np.uint8).reshape(len(frame), len(names))
    by_path = set(files)
    by_name: dict[str, list[str]] = {}
    for file in files:
        by_name.setdefault(file.rsplit("/", 1)[-1], []).append(file)
    labels: dict[str, np.ndarray] = {}
    unmatched = []
    for key, row in zip(frame["file"].astype(str).tolist(), rows, strict=True):
        key = key.replace("\\", "/").removeprefix("./")
        candidates = [key] if key in by_path else by_name.get(key, [])
        file = candidates[0] if len(candidates) == 1 else None  # a bare name shared by several files matches none
        if file is None:
            unmatched.append(key)
        elif file in labels:
            raise LatentctlError(f"{path} labels {file} more than once", hint="give each image one row")
        else:
            labels[file] = row
    return names, labels, unmatched


def import_folder(source: Path, root: Path, name: str, *, size: int = PREPARED_SIZE, labels: Path | None = None,
                  force: bool = False, on_progress: Progress | None = None) -> FolderImport:
    """Import the images under ``source`` into ``root`` as dataset ``name``: each centre-cropped to a square and
    resized to ``size``, into the prepared cache format; return what was imported and what was skipped (why).

    ``labels`` is a CSV (see ``read_labels``); images without a row are then skipped too. Staged in a hidden
    folder and renamed into place, so a failed import leaves ``root`` as it was. Refuses to replace a dataset
    already in ``root`` unless ``force``, and raises LatentctlError when no image is left to import.
    """
    from PIL import Image

    source, root = Path(source), Path(root)
    check_name(name)
    if size < 8:
        raise UsageError(f"size {size} is below 8 pixels", option="'--size'")
    if not source.is_dir():
        raise LatentctlError(f"{source} is not a folder", hint="give the folder that holds your images")
    if root.exists() and any(root.iterdir()):
        if not is_folder_dataset(root):  # never replaced, even with --force: it may be a CelebA or your photos
            raise LatentctlError(f"{root} holds files that are not an imported dataset",
                                 hint="choose another --name (or --root)")
        if not force:
            raise LatentctlError(f"{root} already holds an imported dataset",
                                 hint="pass --force to replace it, or choose another --name")
    started = time.perf_counter()
    files = image_files(source)
    attribute_names: list[str] = []
    rows: dict[str, np.ndarray] = {}
    unmatched: list[str] = []
    if labels is not None:
        attribute_names, rows, unmatched = read_labels(Path(labels), files)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    try:
        raw = staging / "images.raw"
        kept: list[str] = []
        hashes: list[str] = []
        skipped: list[dict[str, str]] = []
        seen: dict[str, str] = {}  # content hash -> the first file with it
        with open(raw, "wb") as out:
            for done, file in enumerate(files, start=1):
                data = (source / file).read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                reason = None
                if labels is not None and file not in rows:
                    reason = f"no row in {Path(labels).name}"
                elif digest in seen:
                    reason = f"duplicate of {seen[digest]}"
                else:
                    try:
                        with Image.open(io.BytesIO(data)) as image:
                            if min(image.size) < MIN_SIDE:
                                reason = f"too small ({image.size[0]}x{image.size[1]}; at least {MIN_SIDE} px a side)"
                            else:
                                out.write(np.asarray(_square(image, size)).transpose(2, 0, 1).tobytes())
                    except Exception as error:  # noqa: BLE001 - any decoding failure skips the file, named
                        reason = f"unreadable ({type(error).__name__}: {str(error).strip()[:120]})"
                if reason is None:
                    seen[digest] = file
                    kept.append(file)
                    hashes.append(digest)
                else:
                    skipped.append({"file": file, "reason": reason})
                if on_progress and (done % 100 == 0 or done == len(files)):
                    on_progress(done, len(files))
        if not kept:
            raise LatentctlError(f"no usable image in {source} ({len(files)} JPEG/PNG/WebP files found, "
                                 f"{len(skipped)} skipped)", hint=f"images must be at least {MIN_SIDE} px a side"
                                 + (" and have a row in the labels file" if labels is not None else ""))
        split = np.array([int(digest[:8], 16) % VAL_EVERY == 0 for digest in hashes], dtype=np.int8)
        attributes = (np.stack([rows[file] for file in kept]) if labels is not None
                      else np.zeros((len(kept), 0), dtype=np.uint8))
        cache = cache_dir(staging / "out", size, CROP)
        cache.mkdir(parents=True)
        _write_cache(cache, raw, kept, attributes, split, size)
        splits = dict(zip(SPLIT_NAMES, np.bincount(split, minlength=len(SPLIT_NAMES)).tolist(), strict=True))
        fingerprint = hashlib.sha256("".join(hashes).encode() + attributes.tobytes()
                                     + "\n".join(attribute_names).encode()).hexdigest()
        write_json(cache / META_FILE, {
            "version": CACHE_VERSION, "dataset": "folder", "name": name, "size": size, "crop": CROP,
            "count": len(kept), "source": str(source.resolve()), "source_fingerprint": fingerprint,
            "attributes": attribute_names, "synthetic": None, "splits": splits,
            "seconds": round(time.perf_counter() - started, 2)})
        write_json(staging / "out" / FOLDER_MARKER, {
            "name": name, "source": str(source.resolve()), "labels": str(Path(labels).resolve()) if labels else None,
            "size": size, "min_side": MIN_SIDE, "files": len(files), "imported": len(kept),
            "attributes": attribute_names, "skipped": skipped, "unmatched_rows": unmatched})
        for entry in list(root.iterdir()):  # the old dataset goes only now that the new one is complete
            if entry == staging:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in (staging / "out").iterdir():
            os.replace(entry, root / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FolderImport(source, root, name, size, len(kept), attribute_names, splits, skipped, unmatched,
                        cache_dir(root, size, CROP), time.perf_counter() - started)


def _square(image: Image.Image, size: int) -> Image.Image:
    """Return ``image`` upright (as its EXIF orientation says: phones store photos sideways), RGB, its centred
    square resized to ``size``."""
    from PIL import ImageOps

    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    return crop_and_resize(image, size, CROP)


def _write_cache(cache: Path, raw: Path, files: list[str], attributes: np.ndarray, split: np.ndarray,
                 size: int) -> None:
    """Write the cache's arrays: the decoded rows of ``raw`` become images.npy, copied in chunks."""
    shape = (len(files), 3, size, size)
    decoded = np.memmap(raw, dtype=np.uint8, mode="r", shape=shape)
    images = np.lib.format.open_memmap(cache / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=shape)
    for start in range(0, len(files), 1024):
        images[start:start + 1024] = decoded[start:start + 1024]
    images.flush()
    del images, decoded
    np.save(cache / ATTRIBUTES_FILE, attributes.astype(np.uint8))
    np.save(cache / SPLIT_FILE, split)
    (cache / FILENAMES_FILE).write_text("".join(file + "\n" for file in files), encoding="utf-8")


def prepared_sizes(root: Path) -> list[int]:
    """The image sides the dataset in ``root`` has a cache of."""
    found = [re.fullmatch(rf"(\d+)px-crop{CROP}", path.name) for path in (Path(root) / PREPARED_DIR).glob("*px-*")]
    return sorted(int(match.group(1)) for match in found if match and (Path(root) / PREPARED_DIR / match.group(0)
                                                                        / META_FILE).is_file())


def load_folder(root: Path, size: int = PREPARED_SIZE, crop: int = CROP) -> PreparedCelebA:
    """Open the imported dataset in ``root`` at ``size`` pixels; raises LatentctlError naming what to do when
    there is none, or none at that size (``crop`` must be the folder's: the whole centred square)."""
    root = Path(root)
    if not is_folder_dataset(root):
        raise LatentctlError(f"no imported dataset in {root}", hint=IMPORT_HINT)
    name = read_json(root / FOLDER_MARKER).get("name", root.name)
    if crop != CROP:
        raise UsageError(f"{name} is an imported folder, cut to each image's whole centred square; --crop is for "
                         "CelebA", option="'--crop'")
    if not (cache_dir(root, size, CROP) / META_FILE).is_file():
        sizes = ", ".join(f"{side}px" for side in prepared_sizes(root)) or "no size"
        raise LatentctlError(f"{name} was imported at {sizes}, not {size}px",
                             hint=f"pass --size {prepared_sizes(root)[0]}, or import it again with --size {size} "
                                  "--force" if prepared_sizes(root) else f"import it again with --size {size} --force")
    return load_prepared(root, size, CROP)


@dataclass
class FolderCheck:
    """The result of ``check_folder``: what the imported dataset holds, and its problems, if any."""

    root: Path
    name: str | None = None
    source: str | None = None
    sizes: list[int] = field(default_factory=list)
    images: int | None = None
    splits: dict[str, int] | None = None
    attributes: list[str] = field(default_factory=list)
    base_rates: dict[str, float] | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)  # at import
    problems: list[str] = field(default_factory=list)
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"dataset": "folder", "name": self.name, "root": str(self.root), "ok": self.ok, "source": self.source,
                "sizes": self.sizes, "images": self.images, "splits": self.splits, "attributes": self.attributes,
                "base_rates": self.base_rates, "skipped": self.skipped, "problems": self.problems, "hint": self.hint}


def check_folder(root: Path) -> FolderCheck:
    """Return a report on the imported dataset in ``root``: every cache opened and its arrays checked against
    its meta.json. Never raises for bad data: every problem becomes an entry of ``problems``."""
    report = FolderCheck(Path(root))
    if not is_folder_dataset(report.root):
        report.problems.append(f"no imported dataset in {report.root}")
        report.hint = IMPORT_HINT
        return report
    try:
        marker = read_json(report.root / FOLDER_MARKER)
    except LatentctlError as error:
        report.problems.append(error.message)
        report.hint = "import the folder again with --force"
        return report
    report.name, report.source = marker.get("name"), marker.get("source")
    report.skipped = list(marker.get("skipped") or [])
    report.sizes = prepared_sizes(report.root)
    if not report.sizes:
        report.problems.append(f"{report.root} holds no prepared images")
    for size in report.sizes:
        try:
            prepared = load_prepared(report.root, size, CROP)
        except LatentctlError as error:
            report.problems.append(error.message)
            continue
        report.images, report.attributes = len(prepared), prepared.attribute_names
        report.splits = {name: int(len(prepared.indices(name))) for name in SPLIT_NAMES}
        report.base_rates = dict(zip(report.attributes, prepared.attributes.mean(axis=0).round(4).tolist(),
                                     strict=True)) if len(prepared) else {}
    if report.problems and report.hint is None:
        report.hint = "import the folder again with --force"
    return report
