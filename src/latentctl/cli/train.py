"""``latentctl train ...``: training commands. Parsing and rendering only; the loops live in latentctl.train."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from latentctl import console, paths
from latentctl.cli.options import DataRoot, Device, Json, Seed
from latentctl.errors import LatentctlError

app = typer.Typer(help="Train models.", no_args_is_help=True)

EXIT_INTERRUPTED = 130
HYPER = "Hyper-parameters"
ARCH = "Architecture"


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


@app.command("cgan")
def train_cgan(
    context: typer.Context,
    data_root: DataRoot = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write "
                                             "[default: $LATENTCTL_HOME/models/cgan-mnist].")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Total epochs [default: 20; with --resume: "
                                               "the run's own].", rich_help_panel=HYPER)] = None,
    batch_size: Annotated[int, typer.Option(min=2, help="Images per step.", rich_help_panel=HYPER)] = 128,
    lr: Annotated[float, typer.Option(callback=_positive, help="Adam learning rate (both networks).",
                                      rich_help_panel=HYPER)] = 2e-4,
    beta1: Annotated[float, typer.Option(min=0.0, max=0.999, help="Adam's first-moment decay (0.5 as in "
                                         "DCGAN: less momentum, steadier GAN games).", rich_help_panel=HYPER)] = 0.5,
    beta2: Annotated[float, typer.Option(min=0.0, max=0.9999, help="Adam's second-moment decay.",
                                         rich_help_panel=HYPER)] = 0.999,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=0.9999, help="Decay of the generator's moving "
                                             "average, which is what gets saved.", rich_help_panel=HYPER)] = 0.999,
    mode_seeking: Annotated[float, typer.Option(min=0.0, help="Weight of a mode-seeking term that pushes "
                                                "for more variety within each digit (0: off).",
                                                rich_help_panel=HYPER)] = 0.0,
    latent_dim: Annotated[int, typer.Option(min=1, help="Noise size.", rich_help_panel=ARCH)] = 100,
    gen_width: Annotated[int, typer.Option(min=4, help="Generator width (channels of its last hidden "
                                           "block).", rich_help_panel=ARCH)] = 64,
    disc_width: Annotated[int, typer.Option(min=4, help="Discriminator width (channels of its first "
                                            "block).", rich_help_panel=ARCH)] = 64,
    sample_every: Annotated[int, typer.Option(min=1, help="Write a sample grid every N epochs.")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where it "
                                         "stopped.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over, replacing the run in --out.")] = False,
    device: Device = "auto",
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Train the conditional DCGAN on MNIST (or synthetic digits).

    Writes the model (EMA generator, safetensors + config.json), a sample grid per epoch (one row per
    digit), a loss curve and the training state to --out. Ctrl-C saves and exits; `--resume` continues.

    Examples:

        latentctl data download mnist && latentctl train cgan
        latentctl train cgan --epochs 5 --device cuda
        latentctl train cgan --resume --epochs 30
    """
    import torch

    from latentctl.device import resolve_device
    from latentctl.train.cgan import default_config, load_digits
    from latentctl.train.gan import GANTrainer, TrainOptions

    if resume and force:
        raise typer.BadParameter("--resume continues a run and --force replaces it: pick one",
                                 param_hint="--resume/--force")
    out = out or paths.model_dir("cgan-mnist")
    custom_data = data_root is not None
    data_root = data_root or paths.data_dir("mnist")
    torch_device = resolve_device(device)
    dataset = load_digits(data_root)  # before --force clears anything: a typo in --data-root loses nothing
    _prepare_out(out, resume=resume, force=force)
    if resume:
        _warn_ignored_with_resume(context)
        trainer = GANTrainer.resume(out, dataset, torch_device, epochs=epochs, warn=console.warn)
        if trainer.epoch >= trainer.options.epochs:
            raise LatentctlError(f"{out} has already trained {trainer.epoch} of {trainer.options.epochs} "
                                 "epochs", hint=f"pass --epochs N with N > {trainer.epoch} to train further")
        console.info(f"resuming {out} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    else:
        options = TrainOptions(epochs=epochs or 20, batch_size=batch_size, lr=lr, beta1=beta1, beta2=beta2,
                               ema_decay=ema_decay, mode_seeking=mode_seeking, seed=seed, sample_every=sample_every)
        trainer = GANTrainer(default_config(latent_dim, gen_width, disc_width), options, dataset, out,
                             torch_device)
    console.info(f"training a conditional DCGAN on {dataset.name} ({dataset.images.shape[0]:,} images) "
                 f"on {torch_device} for {trainer.options.epochs} epochs -> {out}")
    torch.set_float32_matmul_precision("high")
    finished = run_training(trainer)
    resume_command = f"latentctl train cgan --resume --out {out}"
    if custom_data:
        resume_command += f" --data-root {data_root}"
    _report(trainer, out, finished, json_output, resume_command)


RESUME_KEEPS = ("batch_size", "lr", "beta1", "beta2", "ema_decay", "mode_seeking", "latent_dim", "gen_width",
                "disc_width", "sample_every", "seed")


def _warn_ignored_with_resume(context: typer.Context) -> None:
    """A resumed run keeps its own settings (only --epochs may change); say so if others were given."""
    sources = {name: context.get_parameter_source(name) for name in RESUME_KEEPS}
    given = [name for name, source in sources.items() if source is not None and source.name != "DEFAULT"]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        console.warn(f"ignoring {flags}: a resumed run keeps the settings it started with (only --epochs "
                     "can change); use --force to start over with new ones")


def _prepare_out(out: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a previous run by accident; with --force clear it first."""
    from latentctl import store

    holds_run = (out / store.STATE_JSON_FILE).exists() or (out / store.CONFIG_FILE).exists()
    if resume or not holds_run:
        return
    if not force:
        raise LatentctlError(f"{out} already holds a training run",
                             hint="pass --resume to continue it, --force to start over, or --out elsewhere")
    for name in (store.STATE_JSON_FILE, store.STATE_TENSORS_FILE, store.CONFIG_FILE, store.WEIGHTS_FILE,
                 "loss.png"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "samples", ignore_errors=True)


def run_training(trainer: Any) -> bool:
    """Run ``trainer.train`` with a progress display; the first Ctrl-C stops after the current step."""
    with _stop_on_interrupt(trainer), _TrainingDisplay(trainer) as display:
        return trainer.train(display.update)


@contextmanager
def _stop_on_interrupt(trainer: Any) -> Iterator[None]:
    def request_stop(signum: int, frame: Any) -> None:
        if trainer.saving:  # aborting mid-write would leave old and new checkpoint files side by side
            trainer.stop_requested = True
            console.info("finishing the checkpoint being written, then stopping")
            return
        if trainer.stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        trainer.stop_requested = True
        console.info("stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

    try:
        previous = signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _TrainingDisplay:
    """A live bar per epoch on a terminal; one plain line per epoch otherwise (logs, pipes, CI)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _TrainingDisplay:
        if console.interactive():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
                                console=console.stderr, transient=True)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, event: str, info: dict[str, Any]) -> None:
        if event == "epoch_start" and self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"epoch {info['epoch']}/{info['epochs']}", total=info["steps"],
                                          completed=info["step"], losses="")
        elif event == "step" and self.bar is not None:
            self.bar.update(self.task, completed=info["step"],
                            losses=f"D {info['loss_d']:.3f}  G {info['loss_g']:.3f}")
        elif event == "epoch_end":
            report = info["report"]
            console.info(f"epoch {report.epoch}/{self.trainer.options.epochs}  loss D {report.loss_d:.3f}  "
                         f"G {report.loss_g:.3f}  D(x) {report.d_real:.2f}  D(G(z)) {report.d_fake:.2f}  "
                         f"{report.seconds:.1f}s" + (f"  -> {report.sample_path}" if report.sample_path else ""))


def _report(trainer: Any, out: Path, finished: bool, json_output: bool, resume_command: str) -> None:
    training = trainer.model_config().training
    if json_output:
        console.emit_json({"command": "train cgan", "model": str(out), "complete": finished,
                           "epoch": trainer.epoch, "step_in_epoch": trainer.step_in_epoch,
                           "files": sorted(str(p) for p in out.rglob("*") if p.is_file()),
                           "training": training})
    if not finished:
        console.info(f"interrupted at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}: checkpoint "
                     f"saved in {out}")
        console.info(f"continue with: {resume_command}")
        raise typer.Exit(EXIT_INTERRUPTED)
    console.info(f"done: {trainer.epoch} epochs in {training['seconds']:.0f}s; model in {out}")
    if not json_output:
        console.emit_path(out)
