"""Download CelebA: the official files from Google Drive (or ``--mirror``s), or a parquet mirror on the Hub.

Two sources, one result: CelebA installed in the official layout by ``import_celeba`` and checked; "auto" tries
the official files, then the Hub. Drive's "can't scan for viruses" page is followed to the file, a quota page
is an error, never a saved file. docs/celeba.md describes both sources.
"""

from __future__ import annotations

import functools
import inspect
import io
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin

import numpy as np

from latentctl.data import CELEBA_SOURCES, HUB_REPO
from latentctl.data.celeba import (
    ATTR_CSV,
    ATTR_TXT,
    CELEBA_ATTRIBUTES,
    IMAGE_DIR,
    OFFICIAL_MD5,
    PARTITION_TXT,
    Progress,
    check_celeba,
    import_celeba,
    write_official_annotations,
)
from latentctl.data.download import download_file
from latentctl.data.mnist import DownloadProgress
from latentctl.errors import LatentctlError, first_line

if TYPE_CHECKING:
    import pyarrow

IMAGES_ZIP = "img_align_celeba.zip"
# name -> (Google Drive file id, md5), as torchvision's CelebA lists them (torchvision/datasets/celeba.py).
OFFICIAL_FILES: dict[str, tuple[str, str]] = {
    IMAGES_ZIP: ("0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    ATTR_TXT: ("0B7EVK8r0v71pblRyaVFSWGxPY0U", OFFICIAL_MD5[ATTR_TXT]),
    "identity_CelebA.txt": ("1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS", "32bd1bd63d3c78cd57e08160ec5ed1e2"),
    "list_bbox_celeba.txt": ("0B7EVK8r0v71pbThiMVRxWXZ4dU0", "00566efa6fedff7a56946cd1c10f1c16"),
    "list_landmarks_align_celeba.txt": ("0B7EVK8r0v71pd0FJY3Blby1HUTQ", "cc24ecafdb5b50baae59b03474781f8c"),
    PARTITION_TXT: ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", OFFICIAL_MD5[PARTITION_TXT]),
}
EXTRA_FILES: tuple[str, ...] = ("identity_CelebA.txt", "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")
# Read at call time, so tests (and users behind a Drive proxy) can point it elsewhere.
DRIVE_URL = "https://drive.google.com/uc?export=download&id={id}"
HUB_ENDPOINT: str | None = None  # None: huggingface_hub's default (https://huggingface.co, or $HF_ENDPOINT)
DOWNLOAD_DIR = ".download"  # inside root: partial and finished downloads, removed once CelebA is installed

MANUAL_HINT = ("download img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt in a browser (or "
               "Kaggle's archive.zip) and run 'latentctl data import celeba PATH'")
OFFICIAL_HINT = f"run it again later (partial downloads resume), try '--source hub', or {MANUAL_HINT}"
HUB_HINT = f"run it again later (partial downloads resume), try '--source official', or {MANUAL_HINT}"
NOT_CELEBA_HINT = ("pass --hub-repo with a CelebA mirror whose parquet files hold the images and the 40 "
                   f"attributes (the default is {HUB_REPO}), or use '--source official'")

_QUOTA_MARKERS = ("too many users have viewed or downloaded this file recently", "quota exceeded")
_SPLIT_WORDS = {"train": 0, "training": 0, "valid": 1, "validation": 1, "val": 1, "dev": 1, "test": 2, "testing": 2}
_ATTRIBUTE_ALIASES = {"fiveoclockshadow": "5oclockshadow", "greyhair": "grayhair"}
_JPEG_MAGIC = b"\xff\xd8\xff"
_BATCH_ROWS = 512


class OfficialUnavailable(LatentctlError):
    """The official files could not be had (Drive quota or page, network, checksum, broken zip)."""


@dataclass
class CelebaDownload:
    """What ``download_celeba`` did."""

    root: Path
    source: str  # "official", "hub", or "existing" when a CelebA that passes its check was already there
    origin: str | None  # where the files came from: "Google Drive", the mirrors, "hf:<repo>"; None for existing
    images: int
    files: list[Path] = field(default_factory=list)  # the annotation files in root
    fallback: str | None = None  # why the official download was given up (source auto), if it was
    reencoded: int = 0  # Hub images that were not JPEG and were re-encoded as JPEG (quality 95)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "origin": self.origin, "root": str(self.root),
                "image_dir": str(self.root / IMAGE_DIR), "images": self.images,
                "files": [{"name": path.name, "path": str(path), "size": path.stat().st_size} for path in self.files],
                "fallback": self.fallback, "reencoded": self.reencoded}


def download_celeba(
    root: Path,
    source: str = "auto",
    *,
    mirrors: Sequence[str] | None = None,
    hub_repo: str | None = None,
    force: bool = False,
    on_progress: DownloadProgress | None = None,
    on_install: Progress | None = None,
    on_fallback: Callable[[str], None] | None = None,
    drive_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
    hub_endpoint: str | None = None,
) -> CelebaDownload:
    """Download CelebA into ``root`` from ``source`` ("auto", "official" or "hub"), install and check it.

    ``mirrors`` are base URLs serving the official file names, used instead of Google Drive. ``hub_repo`` is
    the Hub dataset for the hub source (default ``HUB_REPO``). With "auto", a failed official download is
    reported through ``on_fallback(message)`` and the Hub is tried. ``on_progress(file, bytes, total)``
    follows each download, ``on_install(done, total)`` the extraction or conversion. ``drive_url`` (with an
    ``{id}`` field), ``checksums`` (name -> md5, over the official ones) and ``hub_endpoint`` replace
    ``DRIVE_URL``, the official md5s and the Hub's address. Returns what was done; raises LatentctlError
    with a hint when nothing worked.
    """
    if source not in CELEBA_SOURCES:
        raise ValueError(f"source must be one of {CELEBA_SOURCES}, not {source!r}")
    root = Path(root)
    existing = _existing(root, force)
    if existing is not None:
        return existing
    fallback = None
    if source in ("auto", "official"):
        try:
            return _official(root, mirrors, on_progress, on_install, drive_url, checksums)
        except OfficialUnavailable as error:
            if source == "official":
                raise
            fallback = error.message
            if on_fallback is not None:
                on_fallback(f"{error.message}; trying the Hugging Face Hub ({hub_repo or HUB_REPO}) instead")
    try:
        result = _hub(root, hub_repo or HUB_REPO, on_progress, on_install, hub_endpoint, None)
    except LatentctlError as error:
        if fallback is None:
            raise
        raise LatentctlError(error.message, hint=f"the official download failed too; {MANUAL_HINT}") from None
    result.fallback = fallback
    return result


def _existing(root: Path, force: bool) -> CelebaDownload | None:
    """Return the CelebA already in ``root`` when it passes its check (and ``force`` is off); None when there is
    none or it is to be replaced. Raises when it is synthetic or broken and ``force`` is off."""
    if force or not any((root / name).exists() for name in (IMAGE_DIR, ATTR_TXT, PARTITION_TXT, ATTR_CSV)):
        return None
    report = check_celeba(root)
    if report.synthetic is not None:
        raise LatentctlError(f"{root} holds a synthetic CelebA (from 'latentctl data synth faces')",
                             hint="pass --force to replace it with the real one, or choose another --root")
    if not report.ok:
        raise LatentctlError(f"{root} holds a CelebA that fails its check ({report.problems[0]})",
                             hint="pass --force to replace it, or choose another --root")
    files = [root / name for name in (ATTR_TXT, PARTITION_TXT, *EXTRA_FILES) if (root / name).is_file()]
    return CelebaDownload(root, "existing", None, report.images_on_disk or 0, files)


# -------------------------------------------------------------------------------------- official source

def download_official(
    root: Path,
    *,
    mirrors: Sequence[str] | None = None,
    force: bool = False,
    on_progress: DownloadProgress | None = None,
    on_install: Progress | None = None,
    drive_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
) -> CelebaDownload:
    """Download the official CelebA files (Google Drive, or ``mirrors``), verify, install and check them.

    Raises OfficialUnavailable when a file cannot be had intact (a Drive quota or other page, the network, a
    checksum, a broken zip), naming the file and why, and LatentctlError when ``root`` holds a synthetic or
    broken CelebA and ``force`` is off. A CelebA that passes its check is kept as it is.
    """
    root = Path(root)
    return _existing(root, force) or _official(root, mirrors, on_progress, on_install, drive_url, checksums)


def _official(root: Path, mirrors: Sequence[str] | None, on_progress: DownloadProgress | None,
              on_install: Progress | None, drive_url: str | None,
              checksums: Mapping[str, str] | None) -> CelebaDownload:
    expected = {name: md5 for name, (_, md5) in OFFICIAL_FILES.items()} | dict(checksums or {})
    bases = [base if base.endswith("/") else base + "/" for base in mirrors or ()]
    downloads = root / DOWNLOAD_DIR
    for name, (drive_id, _) in OFFICIAL_FILES.items():
        if bases:
            urls, follow = [base + name for base in bases], None
        else:
            urls = [(drive_url or DRIVE_URL).format(id=drive_id)]
            follow = functools.partial(follow_drive_page, name)
        report = None if on_progress is None else functools.partial(on_progress, name)
        try:
            download_file(urls, downloads / name, md5=expected[name], on_progress=report, follow=follow)
        except OfficialUnavailable:
            raise
        except LatentctlError as error:
            raise OfficialUnavailable(error.message, hint=OFFICIAL_HINT) from None
    archive = downloads / IMAGES_ZIP
    _test_zip(archive)
    # import_celeba finds the annotation files beside the zip; _existing has already applied --force.
    images = import_celeba(archive, root, force=True, on_progress=on_install).images
    for name in EXTRA_FILES:
        os.replace(downloads / name, root / name)
    shutil.rmtree(downloads, ignore_errors=True)
    files = [root / name for name in (ATTR_TXT, PARTITION_TXT, *EXTRA_FILES)]
    origin = ", ".join(bases) if bases else "Google Drive"
    return CelebaDownload(root, "official", origin, images, files)


class _DriveForm(HTMLParser):
    """Collects the "download anyway" form of a Drive warning page (or an older page's confirm link)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.link: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        action, href = found.get("action", ""), found.get("href", "")
        if tag == "form" and self.action is None and (found.get("id") == "download-form" or "download" in action):
            self.action, self._in_form = action, True
        elif tag == "input" and self._in_form and found.get("name") and found.get("type", "hidden") == "hidden":
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "a" and self.link is None and "confirm=" in href and "export=download" in href:
            self.link = href

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def follow_drive_page(name: str, url: str, page: bytes) -> str | None:
    """Return the URL that a Google Drive warning page's "download anyway" form leads to, or None.

    Raises OfficialUnavailable for a quota page ("Too many users have viewed or downloaded this file
    recently"), so the user reads what happened instead of a generic "HTML page" failure.
    """
    text = page.decode("utf-8", errors="replace")
    lowered = " ".join(text.lower().split())
    if any(marker in lowered for marker in _QUOTA_MARKERS):
        raise OfficialUnavailable(f"Google Drive refuses {name} for now: too many users have viewed or downloaded "
                                  "it recently (its download quota is exceeded)", hint=OFFICIAL_HINT)
    form = _DriveForm()
    form.feed(text)
    if form.action is not None and form.fields:
        target = urljoin(url, form.action)
        return target + ("&" if "?" in target else "?") + urlencode(form.fields)
    if form.link is not None:
        return urljoin(url, form.link)
    return None


def _test_zip(archive: Path) -> None:
    """Read every member of ``archive`` and check its CRC; delete it and raise OfficialUnavailable if it is
    truncated or corrupt, so the next run downloads it again."""
    try:
        with zipfile.ZipFile(archive) as opened:
            bad = opened.testzip()
        why = None if bad is None else f"{bad} fails its CRC check"
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        why = f"it is truncated or not a zip file ({error})"
    if why is not None:
        archive.unlink(missing_ok=True)
        raise OfficialUnavailable(f"the downloaded {archive.name} is corrupt: {why}; it was deleted and nothing "
                                  "was installed", hint=OFFICIAL_HINT)


# ------------------------------------------------------------------------------------------- hub source

def download_hub(
    root: Path,
    repo_id: str | None = None,
    *,
    force: bool = False,
    on_progress: DownloadProgress | None = None,
    on_install: Progress | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
) -> CelebaDownload:
    """Download a CelebA parquet mirror from the Hugging Face Hub, convert, install and check it.

    ``repo_id`` is a dataset repository (default ``HUB_REPO``) whose parquet files hold an image column and
    CelebA's 40 attributes, with the split (train/valid/test) in each file's name or folder. Raises
    LatentctlError when the Hub cannot be reached, when the repository does not look like CelebA (before
    more than one file is downloaded), or when ``root`` holds a synthetic or broken CelebA and ``force`` is off.
    """
    root = Path(root)
    return _existing(root, force) or _hub(root, repo_id or HUB_REPO, on_progress, on_install, endpoint, revision)


def _hub(root: Path, repo_id: str, on_progress: DownloadProgress | None, on_install: Progress | None,
         endpoint: str | None, revision: str | None) -> CelebaDownload:
    pq = _parquet_module()
    endpoint = endpoint or HUB_ENDPOINT
    downloads = root / DOWNLOAD_DIR
    parts = hub_parquet_files(repo_id, endpoint=endpoint, revision=revision)
    local_dir = downloads / "hub" / repo_id.replace("/", "--")
    files: list[tuple[Path, int]] = []
    for path_in_repo, split in parts:
        local = _hub_download(repo_id, path_in_repo, local_dir, endpoint, revision, on_progress)
        _celeba_columns(pq.read_schema(local), local, repo_id)  # fail at the first file, not the last
        files.append((local, split))
    converted = downloads / "converted"
    shutil.rmtree(converted, ignore_errors=True)
    reencoded = convert_parquet(files, converted, on_progress=on_install, repo_id=repo_id)
    images = import_celeba(converted, root, force=True, on_progress=on_install).images
    shutil.rmtree(downloads, ignore_errors=True)
    return CelebaDownload(root, "hub", f"hf:{repo_id}", images, [root / ATTR_TXT, root / PARTITION_TXT],
                          reencoded=reencoded)


def hub_split(path_in_repo: str) -> int | None:
    """Return the split code (0 train, 1 val, 2 test) that a parquet file's path names, or None.

    ``img_align+identity+attr/valid-00000-of-00003.parquet`` is 1, ``default/test/0000.parquet`` is 2.
    """
    for part in reversed(PurePosixPath(path_in_repo).parts):
        word = re.split(r"[-_.]", part, maxsplit=1)[0].lower()
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return None


def hub_parquet_files(repo_id: str, *, endpoint: str | None = None,
                      revision: str | None = None) -> list[tuple[str, int]]:
    """Return the parquet files of a Hub dataset with their split codes, train first, then val, then test."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError  # exported so since 0.23

    from latentctl.hub import READ_HINT, gated_message, not_found_message

    try:
        names = HfApi(endpoint=endpoint).list_repo_files(repo_id, repo_type="dataset", revision=revision)
    except GatedRepoError:
        raise LatentctlError(gated_message(f"the dataset {repo_id}", f"https://huggingface.co/datasets/{repo_id}"),
                             hint=READ_HINT) from None
    except RepositoryNotFoundError:
        raise LatentctlError(not_found_message(f"the dataset {repo_id}"),
                             hint=f"check --hub-repo (the default is {HUB_REPO}), or use '--source official'") from None
    except _hub_errors() as error:
        raise LatentctlError(f"could not list the files of the Hub dataset {repo_id}: {first_line(error)}",
                             hint=HUB_HINT) from None
    parquet = sorted(name for name in names if name.endswith(".parquet"))
    if not parquet:
        raise LatentctlError(f"the Hub dataset {repo_id} holds no parquet files, so it is not a CelebA mirror "
                             "latentctl can read", hint=NOT_CELEBA_HINT)
    unsplit = [name for name in parquet if hub_split(name) is None]
    if unsplit:
        raise LatentctlError(f"the Hub dataset {repo_id} has parquet files whose names say no split (train, valid "
                             f"or test): {', '.join(unsplit[:3])}", hint=NOT_CELEBA_HINT)
    return sorted(((name, hub_split(name) or 0) for name in parquet), key=lambda item: (item[1], item[0]))


def _hub_download(repo_id: str, path_in_repo: str, local_dir: Path, endpoint: str | None, revision: str | None,
                  on_progress: DownloadProgress | None) -> Path:
    """Download one file of a Hub dataset into ``local_dir`` (huggingface_hub resumes and verifies it)."""
    from huggingface_hub import hf_hub_download

    name = PurePosixPath(path_in_repo).name
    progress: dict[str, Any] = {}
    if "tqdm_class" in inspect.signature(hf_hub_download).parameters:  # recent; older versions draw their own bars
        progress["tqdm_class"] = _progress_class(name, on_progress)
    try:
        local = hf_hub_download(repo_id, path_in_repo, repo_type="dataset", revision=revision,
                                local_dir=local_dir, endpoint=endpoint, **progress)
    except _hub_errors() as error:
        raise LatentctlError(f"could not download {path_in_repo} of the Hub dataset {repo_id}: "
                             f"{first_line(error)}", hint=HUB_HINT) from None
    return Path(str(local))


def _hub_errors() -> tuple[type[BaseException], ...]:
    """The exceptions huggingface_hub raises for an unreachable Hub, a missing repository or file, a bad id."""
    from huggingface_hub.errors import HTTPError  # the HTTP library's own base error, whichever it is

    return (HTTPError, OSError, ValueError)


def _progress_class(name: str, on_progress: DownloadProgress | None) -> type:
    """Return a silent tqdm class that reports a Hub download's bytes to ``on_progress(name, done, total)``."""
    from tqdm import tqdm

    class _Report(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)

        def update(self, n: float | None = 1) -> bool | None:
            self.done += int(n or 0)
            if on_progress is not None:
                on_progress(name, self.done, self.total)
            return None

        def update_transfer(self, n: float | None = 1) -> None:  # Xet's network bytes: update() counts the file's
            pass

        def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            pass

    return _Report


# ------------------------------------------------------------------------------------- parquet -> layout

def _parquet_module() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LatentctlError("reading the Hub's parquet files needs pyarrow, which is not installed",
                             hint="pip install 'pyarrow>=16', or use '--source official'") from None
    return pq


def _attribute_key(name: str) -> str:
    """Return the form of a column name that is compared with CelebA's: lower case, letters and digits only."""
    key = re.sub(r"[^0-9a-z]", "", name.rsplit(".", 1)[-1].lower())
    return _ATTRIBUTE_ALIASES.get(key, key)


@dataclass(frozen=True)
class _Columns:
    """Where a parquet file keeps the image bytes and each of CelebA's attributes (flattened column names)."""

    read: list[str]  # the top-level columns to read
    image: str  # e.g. "image.bytes"
    attributes: list[str]  # in CelebA's order


def _flat_fields(schema: pyarrow.Schema) -> list[tuple[str, Any]]:
    """Return (name, type) of every leaf column, struct fields as ``parent.child`` (as Table.flatten names them)."""
    import pyarrow as pa

    leaves: list[tuple[str, Any]] = []

    def visit(name: str, type_: Any) -> None:
        if pa.types.is_struct(type_):
            for index in range(type_.num_fields):
                child = type_.field(index)
                visit(f"{name}.{child.name}", child.type)
        else:
            leaves.append((name, type_))

    for schema_field in schema:
        visit(schema_field.name, schema_field.type)
    return leaves


def _celeba_columns(schema: pyarrow.Schema, path: Path, repo_id: str) -> _Columns:
    """Find the image bytes and the 40 attributes in a parquet schema; raises when it does not look like CelebA."""
    import pyarrow as pa

    leaves = _flat_fields(schema)
    binary = [name for name, type_ in leaves if pa.types.is_binary(type_) or pa.types.is_large_binary(type_)]
    preferred = [name for name in binary if name.split(".")[0].lower() in ("image", "img", "picture")]
    images = preferred or binary
    columns_text = ", ".join(field.name for field in schema)
    if not images:
        raise LatentctlError(f"the Hub dataset {repo_id} does not look like CelebA: {path.name} has no image "
                             f"column (its columns: {columns_text})", hint=NOT_CELEBA_HINT)
    by_key = {}
    for name, _ in leaves:
        by_key.setdefault(_attribute_key(name), name)
    missing = [name for name in CELEBA_ATTRIBUTES if _attribute_key(name) not in by_key]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LatentctlError(f"the Hub dataset {repo_id} does not look like CelebA with attributes: {path.name} has "
                             f"no column for {len(missing)} of the 40 attributes ({shown}; its columns: "
                             f"{columns_text[:300]})", hint=NOT_CELEBA_HINT)
    attributes = [by_key[_attribute_key(name)] for name in CELEBA_ATTRIBUTES]
    read = list(dict.fromkeys(name.split(".")[0] for name in [images[0], *attributes]))
    return _Columns(read, images[0], attributes)


def _flags(column: Any, name: str, path: Path) -> np.ndarray:
    """Return a (N,) uint8 0/1 attribute from a bool, 0/1 or -1/1 column."""
    if column.null_count:
        raise LatentctlError(f"{path.name} has rows without a value for {name}", hint=NOT_CELEBA_HINT)
    values = column.to_numpy(zero_copy_only=False)
    if values.dtype == bool:
        return values.astype(np.uint8)
    if values.dtype.kind not in "iuf":
        raise LatentctlError(f"{path.name} holds {values.dtype} values for {name}; CelebA's attributes are "
                             "true/false, 0/1 or -1/1", hint=NOT_CELEBA_HINT)
    bad = ~np.isin(values, (-1, 0, 1))
    if bad.any():
        raise LatentctlError(f"{path.name} holds {values[bad][0]!r} for {name}; CelebA's attributes are "
                             "true/false, 0/1 or -1/1", hint=NOT_CELEBA_HINT)
    return (values == 1).astype(np.uint8)


def _as_jpeg(data: bytes, where: str) -> tuple[bytes, bool]:
    """Return JPEG bytes for an image (as they are when they already are JPEG) and whether it was re-encoded."""
    if data.startswith(_JPEG_MAGIC):
        return data, False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise LatentctlError(f"{where} holds bytes that are not an image ({error})", hint=NOT_CELEBA_HINT) from None
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=95)
    return buffer.getvalue(), True


def convert_parquet(parts: Sequence[tuple[Path, int]], out: Path, on_progress: Progress | None = None,
                    repo_id: str = "") -> int:
    """Write the CelebA held in parquet files into ``out`` in the official layout; return how many images were
    re-encoded (those that were not JPEG; JPEG bytes are written as they are).

    ``parts`` are (file, split code) in the order images are numbered: ``000001.jpg`` is the first row of the
    first file. Raises LatentctlError when a file lacks the image column or one of the 40 attributes, or holds
    values that are not CelebA's.
    """
    import pyarrow as pa

    pq = _parquet_module()
    image_dir = out / IMAGE_DIR
    image_dir.mkdir(parents=True)
    opened = [(pq.ParquetFile(path), path, split) for path, split in parts]
    total = sum(parquet.metadata.num_rows for parquet, _, _ in opened)
    names: list[str] = []
    attributes: list[np.ndarray] = []
    splits: list[np.ndarray] = []
    reencoded = 0
    for parquet, path, split in opened:
        columns = _celeba_columns(parquet.schema_arrow, path, repo_id or "on the Hub")
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns.read):
            table = pa.Table.from_batches([batch]).flatten()
            for data in table.column(columns.image).to_pylist():
                where = f"row {len(names) + 1} ({path.name})"
                if not data:
                    raise LatentctlError(f"{where} has no image bytes", hint=NOT_CELEBA_HINT)
                jpeg, converted = _as_jpeg(data, where)
                reencoded += converted
                name = f"{len(names) + 1:06d}.jpg"
                (image_dir / name).write_bytes(jpeg)
                names.append(name)
            attributes.append(np.stack([_flags(table.column(column), column, path)
                                        for column in columns.attributes], axis=1))
            splits.append(np.full(table.num_rows, split, dtype=np.int8))
            if on_progress is not None:
                on_progress(len(names), total)
    if not names:
        raise LatentctlError(f"the parquet files of {repo_id or 'the Hub dataset'} hold no rows", hint=NOT_CELEBA_HINT)
    write_official_annotations(out, names, np.concatenate(attributes), names, np.concatenate(splits))
    return reencoded
