"""``latentctl data ...``: download, check and synthesise datasets. Parsing and rendering only; the work
lives in latentctl.data."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from latentctl import console, paths
from latentctl.cli.options import DataRoot, Json, Seed
from latentctl.errors import LatentctlError

if TYPE_CHECKING:
    from latentctl.data.mnist import MnistCheck

app = typer.Typer(help="Download, check and synthesise datasets.", no_args_is_help=True)


class Dataset(str, Enum):
    """Datasets that can be downloaded and checked."""

    mnist = "mnist"


class SyntheticSet(str, Enum):
    """Datasets that can be generated offline."""

    digits = "digits"


DatasetArgument = Annotated[Dataset, typer.Argument(help="The dataset.", show_default=False)]


@app.command("download")
def download(
    dataset: DatasetArgument,
    root: DataRoot = None,
    mirror: Annotated[list[str] | None, typer.Option("--mirror", metavar="URL", help="Base URL to fetch the "
                                                     "files from instead of the official mirrors; repeat to "
                                                     "give several, tried in order.")] = None,
    json_output: Json = False,
) -> None:
    """Download a dataset and verify its checksums; files already there and intact are kept.

    Interrupted downloads resume where they stopped. Prints the paths of the files.

    Examples:

        latentctl data download mnist
        latentctl data download mnist --root ./mnist --mirror https://my.mirror.example/mnist/
    """
    from latentctl.data.mnist import download_mnist

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


class _RunningTotal:
    """Feeds a progress bar's ``advance(amount)`` from callbacks that report how much is done so far."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance
        self.done = 0

    def update(self, done: int, total: int | None = None) -> None:
        self.advance(done - self.done)  # negative when a download restarts from zero
        self.done = done


class _DownloadBars:
    """One byte progress bar per file, opened as the download of each file begins."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._name: str | None = None
        self._bar = _RunningTotal(lambda amount: None)

    def __enter__(self) -> _DownloadBars:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def update(self, name: str, done: int, total: int | None) -> None:
        if name != self._name:
            self._stack.close()  # the previous file is finished: its bar goes
            self._bar = _RunningTotal(self._stack.enter_context(console.progress(name, total, unit="bytes")))
            self._name = name
        self._bar.update(done)


@app.command("check")
def check(dataset: DatasetArgument, root: DataRoot = None, json_output: Json = False) -> None:
    """Check a dataset's files: present, readable, official checksums, counts and the label histogram.

    Exits with status 1, naming each problem, when a file is missing or corrupted. Synthetic files
    (from `latentctl data synth digits`) pass, reported as not official.

    Examples:

        latentctl data check mnist
        latentctl data check mnist --root ./mnist --json | jq .ok
    """
    from latentctl.data.mnist import check_mnist

    root = root or paths.data_dir(dataset.value)
    report = check_mnist(root)
    if json_output:
        console.emit_json({"command": "data check", "dataset": dataset.value, **report.to_json()})
    _print_check(report)
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


@app.command("synth")
def synth(
    dataset: Annotated[SyntheticSet, typer.Argument(help="The synthetic set.", show_default=False)],
    root: DataRoot = None,
    n_train: Annotated[int, typer.Option("--n-train", min=1, help="Training digits.")] = 60000,
    n_test: Annotated[int, typer.Option("--n-test", min=1, help="Test digits.")] = 10000,
    seed: Seed = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace official MNIST files found in --root.")] = False,
    json_output: Json = False,
) -> None:
    """Generate synthetic MNIST-like digits, offline, where MNIST goes: training works right after.

    Font digits warped into handwriting-like variety, in MNIST's own file format and names, plus a
    SYNTHETIC.json marker. Same seed, same files. Refuses to replace the official files without --force.

    Examples:

        latentctl data synth digits && latentctl train cgan
        latentctl data synth digits --n-train 6000 --n-test 1000 --seed 1 --root ./digits
    """
    from latentctl.data.synth_digits import synth_digits

    root = root or paths.data_dir("mnist")
    total = n_train + n_test
    console.info(f"drawing {total:,} synthetic {dataset.value} into {root}")
    started = time.perf_counter()
    with console.progress("digits", total=total) as advance:
        files = synth_digits(root, n_train=n_train, n_test=n_test, seed=seed, force=force,
                             on_progress=_RunningTotal(advance).update)
    seconds = time.perf_counter() - started
    if json_output:
        console.emit_json({"command": "data synth", "dataset": dataset.value, "root": str(root), "seed": seed,
                           "counts": {"train": n_train, "test": n_test}, "seconds": round(seconds, 3),
                           "files": [str(path) for path in files]})
    else:
        for path in files:
            console.emit_path(path)
    console.info(f"wrote {total:,} digits in {seconds:.1f}s ({total / seconds:,.0f} digits/s)")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
