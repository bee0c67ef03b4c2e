"""The data commands as calls: ``download``, ``check``, ``import_dataset``, ``prepare`` and ``synth`` take a dataset's
name, fill in what the command leaves out (the folder under $LATENTCTL_HOME, the synthetic counts), refuse
options the dataset does not take (UsageError, as for a bad flag), time the work, and return a result whose
``to_json()`` is the command's --json document and ``summary`` its closing line. The work itself is in the dataset
modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentctl import console, paths
from latentctl.data import (
    DATASETS,
    IMPORT_SOURCES,
    IMPORTABLE,
    PREPARED_CROP,
    PREPARED_SIZE,
    SYNTH_FACES,
    SYNTH_TEST_DIGITS,
    SYNTH_TRAIN_DIGITS,
    SYNTHETIC,
)
from latentctl.data.celeba import OFFICIAL_IMAGES, OFFICIAL_SPLIT_COUNTS, CelebaCheck, check_celeba, import_celeba
from latentctl.data.celeba_download import download_celeba
from latentctl.data.folders import FolderCheck, check_folder, check_name, import_folder, is_folder_dataset
from latentctl.data.mnist import MnistCheck, check_mnist, download_mnist
from latentctl.data.prepare import prepare_celeba
from latentctl.errors import UsageError

Progress = Callable[[int, int], None]  # (done, total)
Table = tuple[str, list[str], list[list[Any]]]  # title, column names, rows


@dataclass
class DataResult:
    """What a data command did."""

    dataset: str
    root: Path
    paths: list[Path]  # what it made: the files, or the dataset's folder; the command prints them without --json
    seconds: float
    details: Any  # the dataset module's own result (CelebaDownload, CelebaImport, PrepareResult), or None
    document: dict[str, Any]  # the --json document, less "command"
    summary: str  # what was done, for a person

    def to_json(self) -> dict[str, Any]:
        return self.document


def download(dataset: str, root: Path | None = None, *, mirrors: Sequence[str] | None = None, source: str = "auto",
             hub_repo: str | None = None, force: bool = False, on_progress: Callable[..., None] | None = None,
             on_install: Progress | None = None, on_fallback: Callable[[str], None] | None = None) -> DataResult:
    """Download ``dataset`` into ``root`` (default: its folder under $LATENTCTL_HOME) and verify it.

    ``source``, ``hub_repo`` and ``force`` are CelebA's (see ``celeba_download.download_celeba``); ``mirrors``
    are base URLs serving the official files. ``on_progress(file, done, total)`` follows each file."""
    _known(dataset, DATASETS)
    if dataset == "celeba" and mirrors and source == "hub":
        raise UsageError("--mirror serves the official files; it does not go with --source hub", option="'--mirror'")
    if dataset != "celeba" and (source != "auto" or hub_repo is not None or force):
        raise UsageError("--source, --hub-repo and --force are for celeba",
                         option="'--source' / '--hub-repo' / '--force'")
    root = _root(root, dataset)
    started = time.perf_counter()
    if dataset == "celeba":
        console.info(f"downloading celeba into {root} (source: {source})")
        result = download_celeba(root, source, mirrors=mirrors, hub_repo=hub_repo, force=force,
                                 on_progress=on_progress, on_fallback=on_fallback, on_install=on_install)
        seconds = time.perf_counter() - started
        if result.source == "existing":
            summary = (f"CelebA is already in {root} and passes its check ({result.images:,} images); nothing was "
                       "downloaded (pass --force to download it again)")
        else:
            summary = (f"{result.reencoded:,} images were not JPEG on the Hub and were re-encoded as JPEG\n"
                       if result.reencoded else "")
            summary += f"celeba is ready in {root}: {result.images:,} images from {result.origin} in {seconds:.1f}s"
        return DataResult(dataset, root, [root], seconds, result,
                          {"dataset": dataset, **result.to_json(), "seconds": round(seconds, 3)}, summary)
    console.info(f"downloading {dataset} into {root}")
    files = download_mnist(root, mirrors=mirrors, on_progress=on_progress)
    size = sum(path.stat().st_size for path in files)
    amount = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
    return DataResult(dataset, root, files, time.perf_counter() - started, None, {
        "dataset": dataset, "root": str(root),
        "files": [{"name": path.name, "path": str(path), "size": path.stat().st_size} for path in files]},
        f"{dataset} is ready in {root} ({amount})")


def check(dataset: str, root: Path | None = None, *, deep: bool = False,
          on_progress: Progress | None = None) -> MnistCheck | CelebaCheck | FolderCheck:
    """Check ``dataset``'s files in ``root``: a ``MnistCheck``, ``CelebaCheck`` or (any other name: a folder
    imported under that name) ``FolderCheck`` report (``.ok``, ``.problems``).

    ``deep`` (CelebA) decodes every image; ``on_progress(done, total)`` follows the decoding."""
    root = _root(root, dataset)
    if dataset not in DATASETS:
        if not is_folder_dataset(root):
            raise UsageError(f"no dataset {dataset!r} in {root}: use mnist, celeba, or a name given to 'latentctl "
                             "data import folder'", option="'DATASET'")
        if deep:
            console.warn("--deep only applies to celeba; an imported folder was decoded when it was imported")
        return check_folder(root)
    if dataset == "celeba":
        return check_celeba(root, deep=deep, on_progress=on_progress)
    if deep:
        console.warn("--deep only applies to celeba; MNIST is always read in full")
    return check_mnist(root)


def describe_check(report: MnistCheck | CelebaCheck | FolderCheck) -> tuple[list[Table], str | None]:
    """A check report for people: its tables, and a line saying where the data came from (or None).

    Nothing when no file was found: the problems say it all."""
    if isinstance(report, CelebaCheck):
        return _celeba_tables(report)
    if isinstance(report, FolderCheck):
        return _folder_tables(report)
    if not any(file.present for file in report.files):
        return [], None
    # md5s are cut to fit 80 columns; the official column says whether they match (--json has them whole).
    rows = [[file.name if file.path is None else file.path.name, _count(file.size),
             "-" if file.md5 is None else file.md5[:12] + "…", "yes" if file.official else "no",
             _count(file.count)] for file in report.files]
    histograms = [split.label_histogram or [None] * 10 for split in report.splits]
    label_rows = [[label, *(_count(histogram[label]) for histogram in histograms)] for label in range(10)]
    tables = [(f"MNIST in {report.root}", ["file", "bytes", "md5", "official", "count"], rows),
              ("labels", ["label", *(split.split for split in report.splits)], label_rows)]
    if report.official:
        return tables, "these are the official MNIST files"
    if report.synthetic is not None:
        return tables, (f"synthetic digits made by 'latentctl data synth digits' (seed "
                        f"{report.synthetic.get('seed', '?')}), not the official MNIST files")
    return tables, None


def _celeba_tables(report: CelebaCheck) -> tuple[list[Table], str | None]:
    """Counts against the official ones, consistency, the top base rates; and whether the counts match."""
    if report.layout is None:
        return [], None
    splits = report.split_counts or {}
    rows = [["images on disk", _count(report.images_on_disk), f"{OFFICIAL_IMAGES:,}"],
            ["attribute rows", _count(report.attribute_rows), f"{OFFICIAL_IMAGES:,}"],
            *([f"{split} split", _count(splits.get(split)), f"{official:,}"]
              for split, official in OFFICIAL_SPLIT_COUNTS.items())]
    checks = [["images without a row", _count(report.images_without_row_count)],
              ["rows without an image", _count(report.rows_without_image_count)]]
    checks += [[f"{name} md5", "official" if found["official"] else found["md5"][:12] + "… (not official)"]
               for name, found in report.annotation_md5.items()]
    if report.deep:
        checks.append(["unreadable images", f"{len(report.unreadable):,} of {_count(report.decoded)} decoded"])
    tables = [(f"CelebA in {report.root} ({report.layout} layout)", ["", "count", "official"], rows),
              ("checks", ["check", "result"], checks)]
    if report.base_rates:
        top = sorted(report.base_rates.items(), key=lambda item: -item[1])[:10]
        tables.append(("most common attributes", ["attribute", "base rate"],
                       [[name, f"{rate:.1%}"] for name, rate in top]))
    return tables, {"synthetic": f"synthetic faces made by 'latentctl data synth faces' (seed "
                                 f"{(report.synthetic or {}).get('seed', '?')}), not the official CelebA",
                    "matches": "the counts match the official CelebA",
                    "differs": "the counts differ from the official CelebA (a subset, or a different release)",
                    }.get(report.expected or "")


def _folder_tables(report: FolderCheck) -> tuple[list[Table], str | None]:
    """What an imported folder holds, its attributes' base rates, and where it came from."""
    if report.images is None:
        return [], None
    splits = report.splits or {}
    rows = [["images", _count(report.images)], *([f"{split} split", _count(splits.get(split))] for split in splits),
            ["sizes", ", ".join(f"{size}px" for size in report.sizes)],
            ["skipped at import", _count(len(report.skipped))]]
    tables = [(f"{report.name} in {report.root}", ["", "value"], rows)]
    if report.base_rates:
        tables.append(("attributes", ["attribute", "base rate"],
                       [[name, f"{rate:.1%}"] for name, rate in report.base_rates.items()]))
    return tables, f"imported from {report.source} by 'latentctl data import folder'"


def import_dataset(dataset: str, source: Path, root: Path | None = None, *, force: bool = False,
                   name: str | None = None, labels: Path | None = None, size: int | None = None,
                   on_progress: Progress | None = None) -> DataResult:
    """Install ``dataset`` from files the user has into ``root``: "celeba" from a folder or a zip, in the official
    layout (see ``celeba.import_celeba``); "folder" from any folder of images, as the dataset ``name`` (``root``
    default: its folder under $LATENTCTL_HOME), with ``labels`` and at ``size`` (see ``folders.import_folder``)."""
    _known(dataset, IMPORT_SOURCES)
    if dataset == "folder":
        return _import_folder(source, root, name=name, labels=labels, size=size, force=force,
                              on_progress=on_progress)
    if name is not None or labels is not None or size is not None:
        raise UsageError("--name, --labels and --size are for 'import folder'", option="'--name' / '--labels' / "
                                                                                       "'--size'")
    root = _root(root, dataset)
    console.info(f"importing {dataset} from {source} into {root}")
    started = time.perf_counter()
    result = import_celeba(source, root, force=force, on_progress=on_progress)
    seconds = time.perf_counter() - started
    return DataResult(dataset, root, [root], seconds, result, {
        "dataset": dataset, "source": str(source), "kind": result.kind, "layout": result.layout, "root": str(root),
        "images": result.images, "seconds": round(seconds, 3)},
        f"imported {result.images:,} images ({result.layout} layout) in {seconds:.1f}s")


def _import_folder(source: Path, root: Path | None, *, name: str | None, labels: Path | None, size: int | None,
                   force: bool, on_progress: Progress | None) -> DataResult:
    if name is None:
        raise UsageError("name the dataset: training finds it by that name (--data NAME)", option="'--name'")
    root = _root(root, check_name(name))
    console.info(f"importing the images in {source} as {name!r} into {root}")
    result = import_folder(source, root, name, size=PREPARED_SIZE if size is None else size, labels=labels,
                           force=force, on_progress=on_progress)
    for skipped in result.skipped:
        console.warn(f"skipped {skipped['file']}: {skipped['reason']}")
    if result.unmatched_rows:
        console.warn(f"{len(result.unmatched_rows):,} rows of {Path(labels or '').name} name no image found: "
                     + ", ".join(result.unmatched_rows[:3]) + (" ..." if len(result.unmatched_rows) > 3 else ""))
    labelled = f", labelled with {len(result.attributes)} attributes" if result.attributes else ""
    return DataResult("folder", root, [root], result.seconds, result, result.to_json(),
                      f"imported {result.images:,} images as {name!r} at {result.size}x{result.size}{labelled} "
                      f"({len(result.skipped):,} skipped) in {result.seconds:.1f}s; train on it with "
                      f"'latentctl train gan --data {name}'")


def prepare(dataset: str, root: Path | None = None, *, size: int = PREPARED_SIZE, crop: int = PREPARED_CROP,
            workers: int | None = None, force: bool = False, on_progress: Progress | None = None) -> DataResult:
    """Build the uint8 cache training reads (see ``prepare.prepare_celeba``) unless it is current."""
    _known(dataset, IMPORTABLE)
    root = _root(root, dataset)
    result = prepare_celeba(root, size, crop, workers=workers, force=force, on_progress=on_progress)
    summary = (f"prepared {result.images:,} images at {size}x{size} in {result.seconds:.1f}s "
               f"({result.images / result.seconds:,.0f} images/s; {result.reason})" if result.built else
               f"the cache in {result.path} is current ({result.images:,} images): nothing to do")
    return DataResult(dataset, root, [result.path], result.seconds, result, {
        "dataset": dataset, "root": str(root), "cache": str(result.path), "built": result.built,
        "reason": result.reason, "images": result.images, "size": size, "crop": crop,
        "seconds": round(result.seconds, 3)}, summary)


def synth(dataset: str, root: Path | None = None, *, n: int | None = None, n_train: int | None = None,
          n_test: int | None = None, seed: int = 0, force: bool = False,
          on_progress: Progress | None = None) -> DataResult:
    """Draw the synthetic set ``dataset`` ("digits": ``n_train`` and ``n_test``, "faces": ``n``) where the
    real one goes (``root``, default its folder under $LATENTCTL_HOME). Same seed, same files."""
    _known(dataset, tuple(SYNTHETIC))
    if dataset == "faces" and (n_train is not None or n_test is not None):
        raise UsageError("--n-train and --n-test are for digits; give faces --n", option="'--n-train' / '--n-test'")
    if dataset == "digits" and n is not None:
        raise UsageError("--n is for faces; give digits --n-train and --n-test", option="'--n'")
    root = _root(root, SYNTHETIC[dataset])
    started = time.perf_counter()
    if dataset == "faces":
        from latentctl.data.synth_faces import split_counts, synth_faces

        n = SYNTH_FACES if n is None else n
        console.info(f"drawing {n:,} synthetic faces into {root}")
        files = synth_faces(root, n, seed=seed, force=force, on_progress=on_progress)
        seconds = time.perf_counter() - started
        return DataResult(dataset, root, [root], seconds, None, {
            "dataset": dataset, "root": str(root), "seed": seed, "n": n, "seconds": round(seconds, 3),
            "counts": split_counts(n), "files": [str(path) for path in files]}, _drawn(n, dataset, seconds))
    from latentctl.data.synth_digits import synth_digits

    n_train = SYNTH_TRAIN_DIGITS if n_train is None else n_train
    n_test = SYNTH_TEST_DIGITS if n_test is None else n_test
    total = n_train + n_test
    console.info(f"drawing {total:,} synthetic digits into {root}")
    files = synth_digits(root, n_train=n_train, n_test=n_test, seed=seed, force=force, on_progress=on_progress)
    seconds = time.perf_counter() - started
    return DataResult(dataset, root, files, seconds, None, {
        "dataset": dataset, "root": str(root), "seed": seed, "counts": {"train": n_train, "test": n_test},
        "seconds": round(seconds, 3), "files": [str(path) for path in files]}, _drawn(total, dataset, seconds))


def _drawn(count: int, what: str, seconds: float) -> str:
    return f"wrote {count:,} {what} in {seconds:.1f}s ({count / seconds:,.0f} {what}/s)"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _known(dataset: str, choices: Sequence[str]) -> None:
    if dataset not in choices:
        raise ValueError(f"dataset must be one of {', '.join(choices)}, not {dataset!r}")


def _root(root: Path | str | None, dataset: str) -> Path:
    return paths.data_dir(dataset) if root is None else Path(root)
