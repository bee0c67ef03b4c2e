"""CelebA: one in-memory form whichever layout it came in, an integrity check, and importing what users have.

Google Drive's quotas often refuse the download (``celeba_download``), so users may bring their own copy: the
official folder or zip, or Kaggle's ``archive.zip``. ``import_celeba`` installs any of them in the official
layout that ``load_celeba`` reads (Kaggle's too); docs/celeba.md shows the files.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from latentctl.data.download import md5_file
from latentctl.data.mnist import SYNTHETIC_MARKER, read_marker
from latentctl.errors import LatentctlError
from latentctl.files import atomic_path

# As CelebA spells them, in its column order.
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")  # index = the code in the partition file
OFFICIAL_IMAGES = 202_599
OFFICIAL_SPLIT_COUNTS: dict[str, int] = {"train": 162_770, "val": 19_867, "test": 19_962}
IMAGE_DIR = "img_align_celeba"
ATTR_TXT, PARTITION_TXT = "list_attr_celeba.txt", "list_eval_partition.txt"
ATTR_CSV, PARTITION_CSV = "list_attr_celeba.csv", "list_eval_partition.csv"
# The md5 of the official annotation files, as torchvision lists them.
OFFICIAL_MD5: dict[str, str] = {
    ATTR_TXT: "75e246fa4810816ffd6ee81facbd244c",
    PARTITION_TXT: "d32c9cbf5e040fd4025c592c306e6668",
}
IMPORT_HINT = ("download img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt from the CelebA "
               "page (or archive.zip from Kaggle) and run 'latentctl data import celeba PATH' (or 'latentctl data "
               "synth faces' for an offline stand-in)")
MISSING_HINT = ("run 'latentctl data download celeba'; or, with the files already downloaded, 'latentctl data "
                "import celeba PATH' (or 'latentctl data synth faces' for an offline stand-in)")
TORCHVISION_DIR = "celeba"  # torchvision.datasets.CelebA(root) keeps the official files in root/celeba/
CORRUPTED_HINT = "import CelebA again with 'latentctl data import celeba PATH': it replaces the files"
MAX_LISTED = 10  # names of missing or unreadable images listed in a report

# on_progress(done, total), called as files are copied, extracted or decoded
Progress = Callable[[int, int], None]


@dataclass
class CelebA:
    """CelebA's file names, attributes and split, whichever layout it was read from."""

    root: Path
    image_dir: Path
    filenames: list[str]  # (N,) e.g. "000001.jpg", in the order of the attribute file
    attributes: np.ndarray  # (N, 40) uint8 in {0, 1}: 1 where CelebA says 1, 0 where it says -1
    split: np.ndarray  # (N,) int8: 0 train, 1 val, 2 test
    layout: str  # "official" or "kaggle"
    synthetic: bool  # a SYNTHETIC.json marker sits in root

    def __len__(self) -> int:
        return len(self.filenames)

    def image_path(self, index: int) -> Path:
        return self.image_dir / self.filenames[index]

    def split_counts(self) -> dict[str, int]:
        return dict(zip(SPLIT_NAMES, np.bincount(self.split, minlength=len(SPLIT_NAMES)).tolist(), strict=True))


# --------------------------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class _Files:
    """Where one layout keeps its images and annotation files."""

    layout: str
    image_dir: Path
    attributes: Path
    partition: Path


def _locate(root: Path) -> _Files:
    """Return the layout of the CelebA in ``root`` (or in ``root/celeba``, as torchvision keeps it); raises
    LatentctlError when there is none."""
    if not any((root / name).is_file() for name in (ATTR_TXT, PARTITION_TXT, ATTR_CSV, PARTITION_CSV)) and (
            (root / TORCHVISION_DIR / ATTR_TXT).is_file()):
        root = root / TORCHVISION_DIR
    if (root / ATTR_TXT).is_file() or (root / PARTITION_TXT).is_file():
        files = _Files("official", root / IMAGE_DIR, root / ATTR_TXT, root / PARTITION_TXT)
    elif (root / ATTR_CSV).is_file() or (root / PARTITION_CSV).is_file():
        nested = root / IMAGE_DIR / IMAGE_DIR
        files = _Files("kaggle", nested if nested.is_dir() else root / IMAGE_DIR, root / ATTR_CSV,
                       root / PARTITION_CSV)
    else:
        raise LatentctlError(f"CelebA is not in {root}: {ATTR_TXT} (or Kaggle's {ATTR_CSV}) is missing",
                             hint=MISSING_HINT)
    for path in (files.attributes, files.partition):
        if not path.is_file():
            raise LatentctlError(f"CelebA in {root} is incomplete: {path.name} is missing", hint=IMPORT_HINT)
    if not files.image_dir.is_dir():
        raise LatentctlError(f"CelebA in {root} is incomplete: the image folder {files.image_dir} is missing",
                             hint=IMPORT_HINT)
    return files


def _bad(path: Path, why: str) -> LatentctlError:
    return LatentctlError(f"{path} is not a CelebA annotation file: {why}", hint=CORRUPTED_HINT)


def _refuse_html(path: Path) -> None:
    """Raise when ``path`` is a web page saved under an annotation file's name (a Drive quota page, a login)."""
    with open(path, "rb") as file:
        start = file.read(512).lstrip().lower()
    if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head")):
        raise _bad(path, "it is an HTML page (a Google Drive quota or login page saved under its name), "
                         "not the annotations")


def _read_table(path: Path, **options: Any) -> Any:
    """Return ``path`` parsed by pandas.read_csv, every parse failure a LatentctlError naming the file."""
    import pandas as pd

    _refuse_html(path)
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise _bad(path, "it is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise _bad(path, str(error).strip().splitlines()[0]) from None


def _first_problem_row(names: np.ndarray, bad: np.ndarray) -> str:
    row = int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
    return f"row {row + 1} ({names[row]})"


def _attribute_values(path: Path, names: np.ndarray, frame: Any) -> np.ndarray:
    """Return the (N, 40) uint8 0/1 attributes of the -1/1 value columns of ``frame``."""
    if frame.shape[1] != len(CELEBA_ATTRIBUTES):
        raise _bad(path, f"its rows have {frame.shape[1]} values, CelebA has {len(CELEBA_ATTRIBUTES)} attributes")
    if frame.isna().to_numpy().any():
        raise _bad(path, f"{_first_problem_row(names, frame.isna().to_numpy())} has fewer than "
                         f"{len(CELEBA_ATTRIBUTES)} values")
    values = frame.to_numpy()
    if values.dtype.kind not in "iu":
        raise _bad(path, "it holds values that are not whole numbers; attributes are -1 or 1")
    bad = (values != 1) & (values != -1)
    if bad.any():
        raise _bad(path, f"{_first_problem_row(names, bad)} holds {int(values[bad][0])}; attributes are -1 or 1")
    return (values == 1).astype(np.uint8)


def _read_official_attributes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (file names, (N, 40) uint8 attributes) of an official list_attr_celeba.txt."""
    _refuse_html(path)
    with open(path, encoding="utf-8", errors="replace") as file:
        count_line, names_line = file.readline().strip(), file.readline().split()
    if not count_line.isdigit():
        raise _bad(path, f"its first line should be the number of images, not {count_line[:40]!r}")
    _check_header(path, names_line)
    frame = _read_table(path, sep=r"\s+", skiprows=2, header=None, dtype={0: str})
    names = frame.iloc[:, 0].to_numpy(dtype=str)
    attributes = _attribute_values(path, names, frame.iloc[:, 1:])
    if int(count_line) != len(names):
        raise _bad(path, f"its first line says {int(count_line):,} images but it holds {len(names):,} rows")
    return names, attributes


def _read_kaggle_attributes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (file names, (N, 40) uint8 attributes) of Kaggle's list_attr_celeba.csv."""
    frame = _read_table(path, dtype={"image_id": str})
    if list(frame.columns[:1]) != ["image_id"]:
        raise _bad(path, f"its header should start with image_id, not {str(frame.columns[0])!r}")
    _check_header(path, [str(column) for column in frame.columns[1:]])
    names = frame["image_id"].to_numpy(dtype=str)
    return names, _attribute_values(path, names, frame.iloc[:, 1:])


def _check_header(path: Path, names: Sequence[str]) -> None:
    if tuple(names) == CELEBA_ATTRIBUTES:
        return
    if len(names) != len(CELEBA_ATTRIBUTES):
        raise _bad(path, f"its header names {len(names)} attributes, CelebA has {len(CELEBA_ATTRIBUTES)}")
    index = next(i for i, (got, want) in enumerate(zip(names, CELEBA_ATTRIBUTES, strict=True)) if got != want)
    raise _bad(path, f"attribute {index + 1} of its header is {names[index]!r}, CelebA's is "
                     f"{CELEBA_ATTRIBUTES[index]!r}")


def _read_partition(path: Path, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (file names, (N,) int8 split codes) of a partition file, txt or Kaggle's csv."""
    if layout == "official":
        frame = _read_table(path, sep=r"\s+", header=None, dtype={0: str})
    else:
        frame = _read_table(path, dtype={"image_id": str})
        if [str(column) for column in frame.columns] != ["image_id", "partition"]:
            raise _bad(path, f"its header should be image_id,partition, not {','.join(map(str, frame.columns))}")
    if frame.shape[1] != 2:
        raise _bad(path, f"its rows have {frame.shape[1]} fields, not a file name and a split")
    names = frame.iloc[:, 0].to_numpy(dtype=str)
    codes = frame.iloc[:, 1].to_numpy()
    if codes.dtype.kind not in "iu" or ((codes < 0) | (codes > 2)).any():
        bad = ~np.isin(codes, (0, 1, 2))
        raise _bad(path, f"{_first_problem_row(names, bad)} has split {codes[bad][0]!r}; splits are 0, 1 or 2")
    return names, codes.astype(np.int8)


def _few(names: Sequence[str] | np.ndarray) -> str:
    shown = ", ".join(str(name) for name in list(names)[:3])
    return shown + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")


def _duplicates(path: Path, names: np.ndarray) -> None:
    unique, counts = np.unique(names, return_counts=True)
    if len(unique) != len(names):
        raise _bad(path, f"it lists {_few(unique[counts > 1])} more than once")


def load_celeba(root: Path) -> CelebA:
    """Return CelebA's names, 0/1 attributes and split from ``root``, official or Kaggle layout.

    Raises LatentctlError when a file is missing, is not what its name says, or the attribute and partition
    files disagree on the images. Does not list the image folder: ``check_celeba`` compares it.
    """
    files = _locate(Path(root))
    root = files.attributes.parent  # root/celeba in torchvision's layout
    if files.layout == "official":
        names, attributes = _read_official_attributes(files.attributes)
    else:
        names, attributes = _read_kaggle_attributes(files.attributes)
    partition_names, codes = _read_partition(files.partition, files.layout)
    _duplicates(files.attributes, names)
    _duplicates(files.partition, partition_names)
    if not np.array_equal(names, partition_names):
        only_attributes = np.setdiff1d(names, partition_names)
        only_partition = np.setdiff1d(partition_names, names)
        if len(only_attributes) or len(only_partition):
            which = (f"{files.attributes.name} has rows for {_few(only_attributes)}, missing from "
                     f"{files.partition.name}" if len(only_attributes) else
                     f"{files.partition.name} lists {_few(only_partition)}, missing from {files.attributes.name}")
            raise LatentctlError(f"the CelebA annotations in {root} disagree: {which}", hint=CORRUPTED_HINT)
        order = {name: index for index, name in enumerate(partition_names.tolist())}
        codes = codes[[order[name] for name in names.tolist()]]
    return CelebA(root, files.image_dir, names.tolist(), attributes, codes, files.layout,
                  (root / SYNTHETIC_MARKER).is_file())


# ------------------------------------------------------------------------------------------- the check

@dataclass
class CelebaCheck:
    """The result of ``check_celeba``: counts, consistency, base rates and the problems, if any."""

    root: Path
    layout: str | None = None
    synthetic: dict[str, Any] | None = None  # the SYNTHETIC.json marker, if any
    images_on_disk: int | None = None
    attribute_rows: int | None = None
    partition_rows: int | None = None
    split_counts: dict[str, int] | None = None
    annotation_md5: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {md5, official}
    images_without_row: list[str] = field(default_factory=list)  # up to MAX_LISTED
    rows_without_image: list[str] = field(default_factory=list)  # up to MAX_LISTED
    images_without_row_count: int | None = None  # None when the annotations could not be read
    rows_without_image_count: int | None = None
    base_rates: dict[str, float] | None = None  # attribute -> fraction of images that have it
    deep: bool = False
    decoded: int | None = None  # images decoded by a deep check
    unreadable: list[dict[str, str]] = field(default_factory=list)  # {name, error}, every one found
    problems: list[str] = field(default_factory=list)
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def expected(self) -> str | None:
        """"synthetic", "matches" or "differs": the counts against the official 202,599 and split."""
        if self.synthetic is not None:
            return "synthetic"
        if self.split_counts is None:
            return None
        official = self.images_on_disk == OFFICIAL_IMAGES and self.split_counts == OFFICIAL_SPLIT_COUNTS
        return "matches" if official else "differs"

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": "celeba", "root": str(self.root), "ok": self.ok, "layout": self.layout,
            "synthetic": self.synthetic,
            "counts": {"images_on_disk": self.images_on_disk, "attribute_rows": self.attribute_rows,
                       "partition_rows": self.partition_rows, "splits": self.split_counts},
            "official_counts": {"images": OFFICIAL_IMAGES, "splits": OFFICIAL_SPLIT_COUNTS,
                                "expected": self.expected},
            "annotation_md5": self.annotation_md5,
            "images_without_row": self.images_without_row, "rows_without_image": self.rows_without_image,
            "images_without_row_count": self.images_without_row_count,
            "rows_without_image_count": self.rows_without_image_count,
            "base_rates": self.base_rates, "deep": self.deep, "decoded": self.decoded,
            "unreadable": self.unreadable, "problems": self.problems, "hint": self.hint,
        }


def check_celeba(root: Path, deep: bool = False, workers: int | None = None,
                 on_progress: Progress | None = None) -> CelebaCheck:
    """Return a report on the CelebA in ``root``: layout, counts, consistency with the images, base rates.

    ``deep`` decodes every image (in ``workers`` processes, default one per CPU) and lists the unreadable
    ones. Never raises for bad data: every problem becomes an entry of ``problems``.
    """
    root = Path(root)
    report = CelebaCheck(root, deep=deep)
    report.synthetic, marker_problem = read_marker(root)
    if marker_problem:
        report.problems.append(marker_problem)
    try:  # the files present, then their contents: the first failure ends the check
        files = _locate(root)
        report.layout = files.layout
        on_disk = sorted(entry.name for entry in os.scandir(files.image_dir)
                         if entry.name.endswith(".jpg") and entry.is_file())
        report.images_on_disk = len(on_disk)
        if files.layout == "official" and report.synthetic is None:
            for path in (files.attributes, files.partition):
                md5 = md5_file(path)
                report.annotation_md5[path.name] = {"md5": md5, "official": md5 == OFFICIAL_MD5[path.name]}
        celeba = load_celeba(root)
    except LatentctlError as error:
        report.problems.append(error.message)
        report.hint = error.hint
        return report
    report.attribute_rows = report.partition_rows = len(celeba)
    report.split_counts = celeba.split_counts()
    report.base_rates = dict(zip(CELEBA_ATTRIBUTES, celeba.attributes.mean(axis=0).round(4).tolist(), strict=True)
                             if len(celeba) else {})
    without_row = np.setdiff1d(on_disk, celeba.filenames)
    without_image = np.setdiff1d(celeba.filenames, on_disk)
    report.images_without_row = without_row[:MAX_LISTED].tolist()
    report.rows_without_image = without_image[:MAX_LISTED].tolist()
    report.images_without_row_count, report.rows_without_image_count = len(without_row), len(without_image)
    if len(without_row):
        report.problems.append(f"{len(without_row):,} images have no attribute row: {_few(without_row)}")
    if len(without_image):
        report.problems.append(f"{len(without_image):,} attribute rows have no image: {_few(without_image)}")
    if deep:
        present = np.intersect1d(celeba.filenames, on_disk).tolist()
        report.unreadable = find_unreadable_images(celeba.image_dir, present, workers, on_progress)
        report.decoded = len(present)
        if report.unreadable:
            names = [item["name"] for item in report.unreadable]
            report.problems.append(f"{len(names):,} images cannot be decoded: {_few(names)}")
    if report.problems and report.hint is None:
        report.hint = CORRUPTED_HINT
    return report


def _decode_chunk(image_dir: str, names: list[str]) -> list[dict[str, str]]:
    """Return {name, error} for each image of ``names`` that Pillow cannot fully decode."""
    from PIL import Image

    unreadable = []
    for name in names:
        try:
            with Image.open(os.path.join(image_dir, name)) as image:
                image.load()
        except Exception as error:  # noqa: BLE001 - any failure to decode is what this looks for
            unreadable.append({"name": name, "error": f"{type(error).__name__}: {error}"})
    return unreadable


def find_unreadable_images(image_dir: Path, names: Sequence[str], workers: int | None = None,
                           on_progress: Progress | None = None, chunk_size: int = 512) -> list[dict[str, str]]:
    """Decode every image of ``names`` in ``image_dir``, in parallel; return {name, error} for each failure."""
    chunks = [list(names[start:start + chunk_size]) for start in range(0, len(names), chunk_size)]
    workers = min(max(1, workers or os.cpu_count() or 1), len(chunks))
    unreadable: list[dict[str, str]] = []
    done = 0
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        decode = map if pool is None else pool.map
        for chunk, found in zip(chunks, decode(_decode_chunk, [str(image_dir)] * len(chunks), chunks), strict=True):
            unreadable += found
            done += len(chunk)
            if on_progress:
                on_progress(done, len(names))
    return unreadable


# ------------------------------------------------------------------------------------------- importing

@dataclass
class CelebaImport:
    """What ``import_celeba`` installed."""

    source: Path
    kind: str  # "folder" or "zip"
    layout: str  # the source's layout: "official" or "kaggle"
    root: Path
    images: int


def import_celeba(source: Path, root: Path, force: bool = False, on_progress: Progress | None = None) -> CelebaImport:
    """Install CelebA from ``source`` into ``root`` in the official layout, validated; return what was done.

    ``source`` is an official folder, ``img_align_celeba.zip`` (annotations beside it or inside), or Kaggle's
    folder or ``archive.zip``. Kaggle's CSVs become the official txt files. A folder's images are hard-linked
    when on the same filesystem, else copied; the source is never changed. Everything is staged in a hidden
    folder inside ``root`` and renamed into place only once it passes ``check_celeba``, so a failed or
    interrupted import leaves ``root`` as it was. Refuses to replace an existing CelebA unless ``force``.
    """
    source, root = Path(source), Path(root)
    if not source.exists():
        raise LatentctlError(f"{source} does not exist", hint=IMPORT_HINT)
    is_zip = source.is_file()
    if is_zip:
        members = _safe_members(source)  # before anything is written
    installed = [root / IMAGE_DIR, root / ATTR_TXT, root / PARTITION_TXT]
    if not force and any(path.exists() for path in installed):
        raise LatentctlError(f"{root} already holds CelebA", hint="pass --force to replace it, or choose another "
                                                                  "--root")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    try:
        if is_zip:
            folder = staging / "extracted"
            _extract(source, members, folder, on_progress)
            found = _find_source(folder, beside=source.parent)
        else:
            found = _find_source(source, beside=None)
        out = staging / "celeba"
        out.mkdir()
        _install_images(found.image_dir, out / IMAGE_DIR, move=is_zip, on_progress=on_progress)
        _install_annotations(found, out)
        if (found.attributes.parent / SYNTHETIC_MARKER).is_file():  # a synthetic set stays marked as one
            shutil.copyfile(found.attributes.parent / SYNTHETIC_MARKER, out / SYNTHETIC_MARKER)
        report = check_celeba(out)
        if not report.ok:
            raise LatentctlError(f"{source} is not a usable CelebA: {'; '.join(report.problems)}",
                                 hint=report.hint or IMPORT_HINT)
        old = staging / "old"
        old.mkdir()
        for path in [*installed, root / SYNTHETIC_MARKER]:
            if path.exists():
                os.replace(path, old / path.name)
        for name in (IMAGE_DIR, ATTR_TXT, PARTITION_TXT, SYNTHETIC_MARKER):
            if (out / name).exists():
                os.replace(out / name, root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CelebaImport(source, "zip" if is_zip else "folder", found.layout, root, report.images_on_disk or 0)


def _safe_members(archive: Path) -> list[zipfile.ZipInfo]:
    """Return the members of a zip; raises LatentctlError, before anything is extracted, when one could land
    outside the folder it is extracted to (an absolute path, a ``..`` component, a symlink)."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = opened.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise LatentctlError(f"{archive} is not a readable zip file ({error})", hint=IMPORT_HINT) from None
    for member in members:
        name = member.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        unsafe = (name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts
                  or stat.S_ISLNK(member.external_attr >> 16))
        if unsafe:
            raise LatentctlError(f"{archive} holds {member.filename!r}, which would land outside the folder it "
                                 "is extracted to; nothing was extracted",
                                 hint="this is not a CelebA download: use img_align_celeba.zip from the CelebA "
                                      "page or archive.zip from Kaggle")
    return members


def _extract(archive: Path, members: list[zipfile.ZipInfo], folder: Path, on_progress: Progress | None) -> None:
    folder.mkdir()
    with zipfile.ZipFile(archive) as opened:
        for done, member in enumerate(members, start=1):
            opened.extract(member, folder)
            if on_progress and (done % 1000 == 0 or done == len(members)):
                on_progress(done, len(members))


def _find_source(folder: Path, beside: Path | None) -> _Files:
    """Return the images and annotation files of a CelebA in ``folder`` (or one folder down), the annotations
    possibly in ``beside`` (where an official image zip was)."""
    bases = [folder, *sorted(path for path in folder.iterdir() if path.is_dir() and path.name != IMAGE_DIR)]
    for base in bases:
        nested = base / IMAGE_DIR / IMAGE_DIR
        image_dir = nested if nested.is_dir() else base / IMAGE_DIR
        if not image_dir.is_dir():
            continue
        for where in [base] + ([beside] if beside else []):
            if (where / ATTR_TXT).is_file():
                return _Files("official", image_dir, where / ATTR_TXT, where / PARTITION_TXT)
            if (where / ATTR_CSV).is_file():
                return _Files("kaggle", image_dir, where / ATTR_CSV, where / PARTITION_CSV)
        raise LatentctlError(f"found CelebA images in {image_dir} but no {ATTR_TXT} or {ATTR_CSV} with them",
                             hint="put list_attr_celeba.txt and list_eval_partition.txt next to the zip or in the "
                                  "folder, then import again")
    raise LatentctlError(f"no {IMAGE_DIR} folder of CelebA images in the source", hint=IMPORT_HINT)


def _install_images(source: Path, target: Path, move: bool, on_progress: Progress | None) -> None:
    """Put the .jpg files of ``source`` in ``target``: by one rename when ``move``, else hard-linked or copied."""
    if move:
        os.replace(source, target)
        return
    names = sorted(entry.name for entry in os.scandir(source) if entry.name.endswith(".jpg") and entry.is_file())
    target.mkdir()
    link = True
    for done, name in enumerate(names, start=1):
        if link:
            try:
                os.link(source / name, target / name)
            except OSError:  # another filesystem, or links not allowed: copy from now on
                link = False
        if not link:
            shutil.copyfile(source / name, target / name)
        if on_progress and (done % 1000 == 0 or done == len(names)):
            on_progress(done, len(names))


def _install_annotations(found: _Files, out: Path) -> None:
    """Write the official txt annotation files into ``out``: copied as they are, or converted from Kaggle's CSVs."""
    if found.layout == "official":
        for path in (found.attributes, found.partition):
            if not path.is_file():
                raise LatentctlError(f"{path} is missing", hint=IMPORT_HINT)
            shutil.copyfile(path, out / path.name)
        return
    for path in (found.attributes, found.partition):
        if not path.is_file():
            raise LatentctlError(f"{path} is missing", hint=IMPORT_HINT)
    names, attributes = _read_kaggle_attributes(found.attributes)
    partition_names, codes = _read_partition(found.partition, "kaggle")
    write_official_annotations(out, names.tolist(), attributes, partition_names.tolist(), codes)


def write_official_annotations(root: Path, names: Sequence[str], attributes: np.ndarray,
                               partition_names: Sequence[str], split: np.ndarray) -> list[Path]:
    """Write list_attr_celeba.txt and list_eval_partition.txt in the official format; return their paths.

    ``attributes`` are (N, 40) 0/1, written as CelebA's -1/1; ``split`` (M,) holds 0 train, 1 val, 2 test.
    """
    tokens = ("-1", " 1")
    rows = (f"{name} " + " ".join(map(tokens.__getitem__, row)) for name, row in zip(names, attributes.tolist(),
                                                                                     strict=True))
    attribute_text = f"{len(names)}\n{' '.join(CELEBA_ATTRIBUTES)}\n" + "".join(row + "\n" for row in rows)
    partition_text = "".join(f"{name} {code}\n" for name, code in zip(partition_names, split.tolist(), strict=True))
    written = []
    for name, text in ((ATTR_TXT, attribute_text), (PARTITION_TXT, partition_text)):
        with atomic_path(root / name) as temporary:
            temporary.write_text(text, encoding="utf-8")
        written.append(root / name)
    return written
