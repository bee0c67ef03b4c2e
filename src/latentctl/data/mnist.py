"""MNIST: the published file table, IDX reading and writing, download, loading and an integrity check.

The four files are kept as published (gzipped IDX) in one folder, ``$LATENTCTL_HOME/data/mnist`` by
default. Uncompressed copies (the names without ``.gz``, as torchvision keeps them) are read too, and so is
torchvision's download layout (``ROOT/MNIST/raw/``).
``latentctl data synth digits`` writes a synthetic stand-in in the same layout, marked by
``SYNTHETIC.json``, so everything that reads MNIST reads it unchanged.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latentctl.data.download import download_file, md5_file
from latentctl.errors import LatentctlError
from latentctl.files import atomic_path, read_json

if TYPE_CHECKING:
    import torch

# split -> (images file, labels file), named as published
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# The md5 of each published file: a download must match it, and ``check`` reports whether a file does.
OFFICIAL_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Tried in order. yann.lecun.com comes last: it has been slow, and at times asks for a login.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
SYNTHETIC_MARKER = "SYNTHETIC.json"
IMAGE_SIZE = 28
NUM_CLASSES = 10
MISSING_HINT = "run 'latentctl data download mnist' (or 'latentctl data synth digits' for an offline stand-in)"
CORRUPTED_HINT = ("run 'latentctl data download mnist' again: it replaces damaged files (or 'latentctl data "
                  "synth digits' for a synthetic set)")
MISMATCH_HINT = ("the images and labels files come from different sets: run 'latentctl data download mnist' "
                 "(or 'latentctl data synth digits') again")

# on_progress(file name, bytes so far, total bytes or None), called as each file arrives
DownloadProgress = Callable[[str, int, int | None], None]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only type MNIST uses


# ------------------------------------------------------------------------------------------------ IDX files

def read_idx(path: Path) -> np.ndarray:
    """Return the uint8 array stored in an IDX file, gzipped or raw (told apart by their first bytes).

    Raises LatentctlError when the file is not IDX, is truncated, or holds more bytes than its header says.
    """
    data = _read_maybe_gzipped(path)
    if len(data) < 4:
        raise _corrupted(path, f"it is {len(data)} bytes long, too short for an IDX header")
    zero, type_code, ndim = struct.unpack_from(">HBB", data)
    if zero != 0 or type_code != _UBYTE or not 1 <= ndim <= 4:
        raise _corrupted(path, f"it does not start like an unsigned-byte IDX file (magic 0x{data[:4].hex()})")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise _corrupted(path, "it ends inside its header")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_size
    if actual != expected:
        shape_text = "x".join(str(size) for size in shape)
        state = "truncated" if actual < expected else "longer than its header says"
        raise _corrupted(path, f"it is {state}: a {shape_text} array needs {expected:,} bytes of data, "
                               f"it holds {actual:,}")
    # bytearray makes the array writable, so torch.from_numpy can share it without a warning
    return np.frombuffer(bytearray(data), dtype=np.uint8, offset=header_size).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in ``.gz``), atomically; return ``path``.

    The gzip header carries no time or file name, so equal arrays give byte-identical files.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 4:
        raise ValueError(f"IDX files here hold uint8 arrays of 1 to 4 dimensions, not {array.dtype} "
                         f"with {array.ndim}")
    header = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return path


def _read_maybe_gzipped(path: Path) -> bytes:
    """Return the bytes of ``path``, decompressed when it is gzipped."""
    data = path.read_bytes()
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise _corrupted(path, "it is truncated (the gzip stream ends early)") from None
    except (OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError; a bad CRC lands here too
        raise _corrupted(path, f"it is not a valid gzip file ({error})") from None


def _corrupted(path: Path, why: str) -> LatentctlError:
    return LatentctlError(f"{path} is corrupted: {why}", hint=CORRUPTED_HINT)


def _read_images(path: Path) -> np.ndarray:
    """Return the (N, 28, 28) uint8 images of an MNIST images file."""
    images = read_idx(path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise _corrupted(path, f"it holds an array of shape {images.shape}, not N images of "
                               f"{IMAGE_SIZE}x{IMAGE_SIZE}")
    return images


def _read_labels(path: Path) -> np.ndarray:
    """Return the (N,) uint8 labels of an MNIST labels file, each checked to be a digit 0-9."""
    labels = read_idx(path)
    if labels.ndim != 1:
        raise _corrupted(path, f"it holds an array of shape {labels.shape}, not a list of labels")
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise _corrupted(path, f"it holds label {int(labels.max())}; MNIST labels are 0-9")
    return labels


# ------------------------------------------------------------------------------------- finding the files

TORCHVISION_DIR = Path("MNIST", "raw")  # where torchvision.datasets.MNIST(root, download=True) puts the files


def _find(root: Path, name: str) -> Path | None:
    """Return the file ``name`` in ``root``, or its uncompressed twin (name without ``.gz``), or either in
    ``root/MNIST/raw`` (torchvision's layout); None when there is none."""
    for folder in (root, root / TORCHVISION_DIR):
        for candidate in (folder / name, folder / name.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
    return None


def _split_files(split: str) -> tuple[str, str]:
    if split not in SPLITS:
        raise LatentctlError(f"unknown MNIST split {split!r}", hint=f"use one of: {', '.join(SPLITS)}")
    return SPLITS[split]


# ---------------------------------------------------------------------------------------------- the API

def download_mnist(root: Path, mirrors: Sequence[str] | None = None,
                   on_progress: DownloadProgress | None = None) -> list[Path]:
    """Download the four MNIST files into ``root``, verified against the published md5s; return their paths.

    ``mirrors`` are base URLs (``<base>/<file name>``); when given, only they are used, else ``MIRRORS``.
    Files already present and intact are kept without touching the network.
    """
    bases = [base if base.endswith("/") else base + "/" for base in (mirrors or MIRRORS)]
    written = []
    for name, md5 in OFFICIAL_MD5.items():
        report = None if on_progress is None else functools.partial(on_progress, name)
        written.append(download_file([base + name for base in bases], root / name, md5=md5, on_progress=report))
    # The folder now holds the real files: a marker left by 'synth digits' would make 'check' lie.
    (root / SYNTHETIC_MARKER).unlink(missing_ok=True)
    return written


def load_mnist(root: Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(images, labels)`` of a split: uint8 (N, 28, 28) and int64 (N,) torch tensors.

    Raises LatentctlError when a file is missing or corrupted, or the two files disagree on N.
    """
    import torch

    images_path, labels_path = (_require(root, name) for name in _split_files(split))
    images, labels = _read_images(images_path), _read_labels(labels_path)
    if len(images) != len(labels):
        raise LatentctlError(f"the MNIST {split} split in {root} has {len(images):,} images but "
                             f"{len(labels):,} labels", hint=MISMATCH_HINT)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


def _require(root: Path, name: str) -> Path:
    path = _find(root, name)
    if path is None:
        raise LatentctlError(f"MNIST is not in {root}: {name} is missing", hint=MISSING_HINT)
    return path


@dataclass
class FileCheck:
    """What ``check_mnist`` found for one of the four files."""

    name: str  # as published, e.g. train-images-idx3-ubyte.gz
    path: Path | None  # the file found (gzipped, or its uncompressed twin); None when missing
    size: int | None = None  # bytes on disk
    md5: str | None = None
    official: bool = False  # byte-identical to the published file
    count: int | None = None  # images or labels it holds; None when missing or unreadable
    problem: str | None = None

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass
class SplitCheck:
    """What ``check_mnist`` found for one split (train or test)."""

    split: str
    images: int | None  # None when the file is missing or unreadable
    labels: int | None
    label_histogram: list[int] | None  # how many of each label 0..9

    @property
    def counts_match(self) -> bool:
        return self.images is not None and self.images == self.labels


@dataclass
class MnistCheck:
    """The result of ``check_mnist``: per-file and per-split findings and the problems, if any."""

    root: Path
    files: list[FileCheck]
    splits: list[SplitCheck]
    synthetic: dict[str, Any] | None  # the SYNTHETIC.json marker left by 'synth digits', if any
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def official(self) -> bool:
        """True when all four files are byte-identical to the published ones."""
        return all(file.official for file in self.files)

    @property
    def hint(self) -> str | None:
        """What to do about the problems, or None when there are none."""
        if self.ok:
            return None
        return MISSING_HINT if any(not file.present for file in self.files) else CORRUPTED_HINT

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": "mnist", "root": str(self.root), "ok": self.ok, "official": self.official,
            "synthetic": self.synthetic,
            "files": [{"name": file.name, "path": None if file.path is None else str(file.path),
                       "present": file.present, "size": file.size, "md5": file.md5, "official": file.official,
                       "count": file.count, "problem": file.problem} for file in self.files],
            "splits": [{"split": split.split, "images": split.images, "labels": split.labels,
                        "counts_match": split.counts_match, "label_histogram": split.label_histogram}
                       for split in self.splits],
            "problems": self.problems,
        }


def check_mnist(root: Path) -> MnistCheck:
    """Return a report on the MNIST files in ``root``: presence, md5, officialness, counts, label histograms.

    Never raises for a bad file: every missing or corrupted file becomes a problem in the report.
    """
    files: list[FileCheck] = []
    splits: list[SplitCheck] = []
    problems: list[str] = []
    for split, (images_name, labels_name) in SPLITS.items():
        images_check, _ = _check_file(root, images_name, _read_images)
        labels_check, labels = _check_file(root, labels_name, _read_labels)
        files += [images_check, labels_check]
        problems += [file.problem for file in (images_check, labels_check) if file.problem]
        histogram = None if labels is None else np.bincount(labels, minlength=NUM_CLASSES).tolist()
        report = SplitCheck(split, images_check.count, labels_check.count, histogram)
        if images_check.count is not None and labels_check.count is not None and not report.counts_match:
            problems.append(f"the {split} split has {report.images:,} images but {report.labels:,} labels")
        splits.append(report)
    synthetic, marker_problem = read_marker(root)
    problems += [marker_problem] if marker_problem else []
    return MnistCheck(root, files, splits, synthetic, problems)


def _check_file(root: Path, name: str,
                read: Callable[[Path], np.ndarray]) -> tuple[FileCheck, np.ndarray | None]:
    """Return the findings for one file and its array (None when missing or unreadable)."""
    path = _find(root, name)
    if path is None:
        return FileCheck(name, None, problem=f"{name} is missing"), None
    md5 = md5_file(path)
    check = FileCheck(name, path, path.stat().st_size, md5, official=path.name == name and md5 == OFFICIAL_MD5[name])
    try:
        array = read(path)
    except LatentctlError as error:
        check.problem = error.message.replace(str(path), path.name, 1)
        return check, None
    check.count = len(array)
    return check, array


def read_marker(root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Return (the SYNTHETIC.json marker or None, a problem with it or None)."""
    path = root / SYNTHETIC_MARKER
    if not path.is_file():
        return None, None
    try:
        marker = read_json(path)
    except LatentctlError:
        return None, f"{SYNTHETIC_MARKER} is not valid JSON"
    if not isinstance(marker, dict):
        return None, f"{SYNTHETIC_MARKER} does not hold a JSON object"
    return marker, None
