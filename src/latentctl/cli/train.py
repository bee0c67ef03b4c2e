"""``latentctl train ...``: training commands. Parsing and rendering only; the loops live in latentctl.train."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from latentctl import console, paths
from latentctl.cli.options import DataRoot, Device, Json, Seed
from latentctl.cli.render import RunningTotal
from latentctl.errors import LatentctlError
from latentctl.train import FACE_ATTRIBUTE_LOSS, FACE_BETAS, FACE_LR, FACE_R1

app = typer.Typer(help="Train models.", no_args_is_help=True)

EXIT_INTERRUPTED = 130
HYPER = "Hyper-parameters"
ARCH = "Architecture"


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


def _image_size(value: int) -> int:
    from latentctl.models.dcgan import base_size

    try:
        base_size(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value


Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")]
Force = Annotated[bool, typer.Option("--force", help="Start over, replacing the run in --out.")]
ImageSize = Annotated[int, typer.Option(min=8, max=1024, callback=_image_size, help="Image side in pixels (s * 2**k "
                                        "with 4 <= s <= 7: 32, 64, 128...).", rich_help_panel=ARCH)]
Crop = Annotated[int, typer.Option(min=8, max=178, help="Centred square cut from CelebA's 178x218 images before "
                                   "resizing (see 'latentctl data prepare').", rich_help_panel=ARCH)]
BATCH_HELP = ("Images per step, all processes together (with --nproc N each takes 1/N; the learning rate is for "
              "this batch).")
Processes = Annotated[int, typer.Option("--nproc", min=1, rich_help_panel="Runtime",
                                        help="Train in N processes on this machine, started with torchrun: one per "
                                        "GPU, or N CPU processes with --device cpu. For several machines run torchrun "
                                        "yourself (docs/distributed.md).")]


class Precision(str, Enum):
    """The training step's arithmetic (see latentctl.train.speed)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class Condition(str, Enum):
    """What the face GAN is conditioned on (see latentctl.models.dcgan)."""

    none = "none"
    attributes = "attributes"


class LRSchedule(str, Enum):
    """How the classifier's learning rate moves over a run (see latentctl.train.classifier)."""

    cosine = "cosine"
    constant = "constant"


PrecisionOption = Annotated[Precision, typer.Option(
    "--precision", rich_help_panel="Runtime",
    help="auto: bf16 autocast on CUDA and on CPUs with bf16 instructions (AVX-512 BF16 or AMX), float32 on other "
         "CPUs, all with channels-last tensors (docs/performance.md). "
         "fp32: the reference computation, the same numbers as before any speed-up, bit for bit (slower). bf16: "
         "bf16 autocast anywhere (on CPUs without AVX-512 BF16 or AMX much slower).")]
Compile = Annotated[bool | None, typer.Option(
    "--compile/--no-compile", rich_help_panel="Runtime", show_default=False,
    help="torch.compile the networks (a minute of compiling, then faster steps). [default: on CUDA yes, on the CPU "
         "no: slower there]")]
SyncDiscriminatorBatchNorm = Annotated[bool, typer.Option(
    "--sync-bn", rich_help_panel=HYPER,
    help="With several GPUs, the discriminator's BatchNorm statistics over the whole batch, not each GPU's share.")]


@app.command("cgan")
def train_cgan(
    context: typer.Context,
    data_root: DataRoot = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write "
                                             "[default: $LATENTCTL_HOME/models/cgan-mnist].")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Total epochs [default: 20; with --resume: "
                                               "the run's own].", rich_help_panel=HYPER)] = None,
    batch_size: Annotated[int, typer.Option(min=2, help=BATCH_HELP, rich_help_panel=HYPER)] = 128,
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
    sync_bn: SyncDiscriminatorBatchNorm = False,
    latent_dim: Annotated[int, typer.Option(min=1, help="Noise size.", rich_help_panel=ARCH)] = 100,
    gen_width: Annotated[int, typer.Option(min=4, help="Generator width (channels of its last hidden "
                                           "block).", rich_help_panel=ARCH)] = 64,
    disc_width: Annotated[int, typer.Option(min=4, help="Discriminator width (channels of its first "
                                            "block).", rich_help_panel=ARCH)] = 64,
    sample_every: Annotated[int, typer.Option(min=1, help="Write a sample grid every N epochs.")] = 1,
    resume: Resume = False,
    force: Force = False,
    device: Device = "auto",
    nproc: Processes = 1,
    precision: PrecisionOption = Precision.auto,
    compile: Compile = None,
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
        latentctl train cgan --nproc 4 --device cuda --batch-size 512
    """
    from latentctl.train.cgan import default_config, load_digits
    from latentctl.train.gan import TrainOptions

    _check_resume_force(resume, force)
    if nproc > 1:
        _run_under_torchrun(context, nproc)
    out = out or paths.model_dir("cgan-mnist")
    custom_data = data_root is not None
    data_root = data_root or paths.data_dir("mnist")
    with _processes(device) as (dist, torch_device):
        dataset = load_digits(data_root)  # before --force clears anything: a typo in --data-root loses nothing
        options = TrainOptions(epochs=epochs or 20, batch_size=batch_size, lr=lr, beta1=beta1, beta2=beta2,
                               ema_decay=ema_decay, mode_seeking=mode_seeking, seed=seed, sample_every=sample_every,
                               sync_bn=sync_bn, precision=precision.value, compile=compile)
        resume_command = _resume_command("cgan", out, data_root if custom_data else None, dist)
        _train_gan(context, "cgan", dataset, default_config(latent_dim, gen_width, disc_width), options, out,
                   torch_device, dist, resume=resume, force=force, epochs=epochs, json_output=json_output,
                   resume_command=resume_command)


@app.command("gan")
def train_gan(
    context: typer.Context,
    data_root: DataRoot = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write "
                                             "[default: $LATENTCTL_HOME/models/gan-celeba].")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Total epochs [default: 25; with --resume: "
                                               "the run's own].", rich_help_panel=HYPER)] = None,
    batch_size: Annotated[int, typer.Option(min=2, help=BATCH_HELP, rich_help_panel=HYPER)] = 128,
    lr: Annotated[float, typer.Option(callback=_positive, help="Adam learning rate (both networks; the seed "
                                      "projects' 1e-3, which the R1 penalty keeps steady).",
                                      rich_help_panel=HYPER)] = FACE_LR,
    beta1: Annotated[float, typer.Option(min=0.0, max=0.999, help="Adam's first-moment decay (0.5 as in "
                                         "DCGAN: less momentum, steadier GAN games).",
                                         rich_help_panel=HYPER)] = FACE_BETAS[0],
    beta2: Annotated[float, typer.Option(min=0.0, max=0.9999, help="Adam's second-moment decay.",
                                         rich_help_panel=HYPER)] = FACE_BETAS[1],
    ema_decay: Annotated[float, typer.Option(min=0.0, max=0.9999, help="Decay of the generator's moving "
                                             "average, which is what gets saved.", rich_help_panel=HYPER)] = 0.999,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Mirror half of the real faces left-right "
                                       "(twice the data for free).", rich_help_panel=HYPER)] = True,
    r1: Annotated[float | None, typer.Option("--r1", min=0.0, help="Weight (gamma) of the R1 penalty on the "
                                             "discriminator's gradient at real faces; 0 turns it off "
                                             f"[default: {FACE_R1:g}, or 0 with --sync-bn, which cannot "
                                             "differentiate it].", show_default=False,
                                             rich_help_panel=HYPER)] = None,
    attribute_loss: Annotated[float, typer.Option(
        "--attribute-loss", min=0.0, rich_help_panel=HYPER,
        help="With --condition attributes: weight of the discriminator's auxiliary attribute classifier, which "
             "makes the generator show every attribute it is given; 0 leaves the projection alone.")
    ] = FACE_ATTRIBUTE_LOSS,
    sync_bn: SyncDiscriminatorBatchNorm = False,
    latent_dim: Annotated[int, typer.Option(min=1, help="Noise size.", rich_help_panel=ARCH)] = 100,
    gen_width: Annotated[int, typer.Option(min=4, help="Generator width (channels of its last hidden "
                                           "block).", rich_help_panel=ARCH)] = 64,
    disc_width: Annotated[int, typer.Option(min=4, help="Discriminator width (channels of its first "
                                            "block).", rich_help_panel=ARCH)] = 64,
    condition: Annotated[Condition, typer.Option(
        "--condition", rich_help_panel=ARCH,
        help="none: faces from noise alone. attributes: the generator also takes the face's binary attributes "
             "(Male, Smiling, Eyeglasses...), so 'latentctl sample --with Male' and 'steer --method label' can "
             "ask for them.")] = Condition.none,
    attribute: Annotated[list[str] | None, typer.Option(
        "--attribute", rich_help_panel=ARCH, show_default=False,
        help="With --condition attributes: condition on this attribute (repeatable) [default: every attribute the "
             "data draws: all 40 of CelebA, the 29 a synthetic set renders].")] = None,
    size: ImageSize = 64,
    crop: Crop = 178,
    sample_every: Annotated[int, typer.Option(min=1, help="Write a sample grid every N epochs.")] = 1,
    resume: Resume = False,
    force: Force = False,
    device: Device = "auto",
    nproc: Processes = 1,
    precision: PrecisionOption = Precision.auto,
    compile: Compile = None,
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Train a DCGAN on CelebA faces (or synthetic faces), 64x64 RGB by default.

    Reads the prepared cache of --data-root (made on first use, see `latentctl data prepare`). Writes
    the model (EMA generator, safetensors + config.json), a 10x10 grid from fixed noise per epoch, a loss
    curve and the training state to --out. Ctrl-C saves and exits; `--resume` continues bit for bit.
    With --condition attributes, row r of the grid has the attributes of the r-th training face.

    Examples:

        latentctl train gan --epochs 50 --device cuda
        latentctl data synth faces && latentctl train gan --epochs 5
        latentctl train gan --resume --epochs 60
        latentctl train gan --nproc 8 --device cuda --batch-size 512 --size 128
        latentctl train gan --condition attributes --out models/gan-attributes
    """
    from latentctl.train.faces import default_config, faces_dataset
    from latentctl.train.gan import TrainOptions

    _check_resume_force(resume, force)
    if attribute and condition is not Condition.attributes and not resume:
        raise typer.BadParameter("--attribute needs --condition attributes",
                                 param_hint="--attribute")
    if nproc > 1:
        _run_under_torchrun(context, nproc)
    out = out or paths.model_dir("gan-celeba")
    custom_data = data_root is not None
    data_root = data_root or paths.data_dir("celeba")
    with _processes(device) as (dist, torch_device):
        conditioned = condition is Condition.attributes
        if resume and (out / "training_state.json").is_file():  # a resumed run reads the cache it started with
            size, crop = _run_image_settings(out, size, crop)
            attribute = _run_attributes(out)
            conditioned = attribute is not None
        prepared = _prepared_celeba(data_root, size, crop, dist)
        names = _condition_attributes(prepared, attribute) if conditioned else None
        dataset = faces_dataset(prepared, attributes=names)
        if r1 is None:
            r1 = 0.0 if sync_bn else FACE_R1
            if sync_bn and not resume:
                console.warn("--sync-bn turns the R1 penalty off: SyncBatchNorm cannot differentiate it")
        options = TrainOptions(epochs=epochs or 25, batch_size=batch_size, lr=lr, beta1=beta1, beta2=beta2,
                               ema_decay=ema_decay, flip=flip, r1=r1, seed=seed, sample_every=sample_every,
                               sync_bn=sync_bn, precision=precision.value, compile=compile,
                               attribute_loss=attribute_loss if names else 0.0)
        resume_command = _resume_command("gan", out, data_root if custom_data else None, dist)
        config = default_config(size, latent_dim, gen_width, disc_width, num_attributes=len(names or []),
                                faces=dataset.images.shape[0])
        _train_gan(context, "gan", dataset, config, options, out, torch_device, dist, resume=resume, force=force,
                   epochs=epochs, json_output=json_output, resume_command=resume_command)


def _check_resume_force(resume: bool, force: bool) -> None:
    if resume and force:
        raise typer.BadParameter("--resume continues a run and --force replaces it: pick one",
                                 param_hint="--resume/--force")


def _run_under_torchrun(context: typer.Context, processes: int) -> None:
    """Start this very command again in ``processes`` processes under torchrun (``--nproc``); leave with their
    exit status."""
    from latentctl.train import distributed

    if distributed.launched_by_torchrun():
        raise typer.BadParameter("torchrun started this process already; its --nproc-per-node says how many "
                                 "processes there are", param_hint="--nproc")
    argv = context.find_root().meta.get("latentctl.argv", sys.argv[1:])
    raise typer.Exit(distributed.launch(_without_nproc(argv), processes))


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line less its ``--nproc N`` (or ``--nproc=N``)."""
    kept: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg == "--nproc":
            skip_value = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


@contextmanager
def _processes(device: str) -> Iterator[tuple[Any, Any]]:
    """Yield this process's place among those torchrun started, and its device (a single process on
    ``device`` without torchrun). Only rank 0 prints; a failure is reported once, by one rank, and ends
    every rank, none left waiting for the others."""
    from latentctl.train import distributed

    rank = distributed.environment_rank()
    was_quiet = console.stderr.quiet
    console.stderr.quiet = was_quiet or rank != 0
    try:
        yield distributed.start(device)
    except (typer.Exit, click.exceptions.Exit):  # a normal end: finished, or stopped by Ctrl-C and saved
        distributed.finish()
        raise
    except BaseException as error:
        if not distributed.report_failure(error):  # another rank says what happened
            raise typer.Exit(_exit_status(error)) from None
        if rank and isinstance(error, LatentctlError):
            raise LatentctlError(f"rank {rank}: {error.message}", hint=error.hint) from None
        raise
    else:
        distributed.finish()
    finally:
        console.stderr.quiet = was_quiet


def _exit_status(error: BaseException) -> int:
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return error.exit_code if isinstance(error, click.exceptions.ClickException) else 1


def _run_image_settings(out: Path, size: int, crop: int) -> tuple[int, int]:
    """The image size and crop a run in ``out`` started with (a resumed run keeps them)."""
    from latentctl import files, store

    state = files.read_json(out / store.STATE_JSON_FILE)
    dataset = state.get("dataset") or {}
    return int(dataset.get("size", size)), int(dataset.get("crop", crop))


def _run_attributes(out: Path) -> list[str] | None:
    """The attributes a run in ``out`` is conditioned on (a resumed run keeps them), or None if it is not."""
    from latentctl import files, store

    state = files.read_json(out / store.STATE_JSON_FILE)
    if not (state.get("gan") or {}).get("num_attributes"):
        return None
    names = (state.get("dataset") or {}).get("attributes")
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise LatentctlError(f"{out / store.STATE_JSON_FILE} is damaged (no list of the attributes the run is "
                             "conditioned on)", hint="start over with --force")
    return names


def _condition_attributes(prepared: Any, asked: list[str] | None) -> list[str]:
    """The attributes to condition on: ``asked`` (names as users type them), or every one the data draws."""
    from latentctl.latent.attributes import match_attribute
    from latentctl.train.faces import drawn_attributes

    if not asked:
        return drawn_attributes(prepared)
    names = list(dict.fromkeys(match_attribute(name, prepared.attribute_names) for name in asked))
    hidden = [name for name in names if name in prepared.not_rendered]
    if hidden:
        raise LatentctlError(f"this synthetic face set does not draw {', '.join(hidden)}: a generator cannot "
                             "learn to show it",
                             hint=f"leave it out; the set leaves out {', '.join(prepared.not_rendered)}")
    return names


def _prepared_celeba(data_root: Path, size: int, crop: int, dist: Any) -> Any:
    """Open the prepared CelebA cache, building it with a progress bar when it is missing or stale.

    With several processes never two build one cache at once: rank 0 first, then the first process of
    each other machine (whose disk may not be rank 0's), while the others wait; then all open it."""
    from latentctl.data.celeba import load_celeba
    from latentctl.data.prepare import ensure_prepared

    def starting(reason: str, count: int) -> None:
        console.info(f"preparing CelebA at {size}x{size} (crop {crop}) for training ({reason}): "
                     f"{count:,} images, once")

    def prepared() -> Any:
        load_celeba(data_root)  # a missing dataset fails here with the import hint, before any progress bar
        with console.progress("preparing", total=None) as advance:
            return ensure_prepared(data_root, size, crop, on_start=starting, on_progress=RunningTotal(advance).update)

    if not dist.enabled:
        return prepared()
    cache = None
    for builds in (dist.is_main, dist.local_rank == 0 and not dist.is_main):
        if builds:
            cache = prepared()
        dist.barrier()
    return cache if cache is not None else prepared()


def _announce_resume(trainer: Any, out: Path) -> None:
    """Refuse to resume a run that has done all its epochs; otherwise say where it picks up."""
    if trainer.epoch >= trainer.options.epochs:
        raise LatentctlError(f"{out} has already trained {trainer.epoch} of {trainer.options.epochs} "
                             "epochs", hint=f"pass --epochs N with N > {trainer.epoch} to train further")
    console.info(f"resuming {out} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")


def _resume_command(kind: str, out: Path, data_root: Path | None, dist: Any) -> str:
    """The command that continues an interrupted run (with --data-root only when one was given, and on one
    machine with as many processes: the same number continues exactly)."""
    command = f"latentctl train {kind} --resume --out {out}" + (f" --data-root {data_root}" if data_root else "")
    one_machine = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size)) == dist.world_size
    if dist.enabled and one_machine:
        command += f" --nproc {dist.world_size}"
    return command


def _train_gan(context: typer.Context, kind: str, dataset: Any, config: Any, options: Any, out: Path,
               torch_device: Any, dist: Any, *, resume: bool, force: bool, epochs: int | None, json_output: bool,
               resume_command: str) -> None:
    """Start or resume a GAN run in ``out`` and train it with a progress display; report the result."""
    import torch

    from latentctl.train.gan import GANTrainer

    _prepare_out(out, resume=resume, force=force, dist=dist)
    if resume:
        _warn_ignored_with_resume(context)
        trainer = GANTrainer.resume(out, dataset, torch_device, epochs=epochs, warn=console.warn, dist=dist)
        if trainer.kind != kind:
            raise LatentctlError(f"{out} holds a {trainer.kind} run, not a {kind} run",
                                 hint=f"resume it with 'latentctl train {trainer.kind} --resume'")
        _announce_resume(trainer, out)
    else:
        _warn_sync_bn_alone(options.sync_bn, dist)
        trainer = GANTrainer(config, options, dataset, out, torch_device, kind=kind, dist=dist)
    what = {"class": "a conditional DCGAN", "none": "a DCGAN",
            "attributes": f"a DCGAN conditioned on {trainer.config.num_attributes} attributes"}
    what = what[trainer.config.condition]
    console.info(f"training {what} on {dataset.name} ({dataset.images.shape[0]:,} images) on {_where(trainer)} "
                 f"for {trainer.options.epochs} epochs -> {out}")
    torch.set_float32_matmul_precision("high")
    finished = run_training(trainer)
    _report(trainer, out, finished, json_output, resume_command, command=f"train {kind}")


RESUME_KEEPS = ("condition", "attribute", "attribute_loss", "batch_size", "lr", "lr_schedule", "beta1", "beta2",
                "ema_decay", "mode_seeking", "flip", "r1",
                "latent_dim", "gen_width", "disc_width", "width", "members", "size", "crop", "sample_every", "seed",
                "sync_bn", "precision", "compile")


def _where(trainer: Any) -> str:
    """The device, or the processes and their share of the batch; and how the step computes."""
    if not trainer.dist.enabled:
        return f"{trainer.device} ({trainer.step_settings.describe()})"
    kind = "GPUs" if trainer.device.type == "cuda" else "CPU processes"
    return (f"{trainer.dist.world_size} {kind} ({trainer.options.batch_size // trainer.dist.world_size} of the "
            f"{trainer.options.batch_size} images of each step each; {trainer.step_settings.describe()})")


def _warn_sync_bn_alone(sync_bn: bool, dist: Any) -> None:
    if sync_bn and not dist.enabled:
        console.warn("--sync-bn does nothing in a single process: its BatchNorm already sees the whole batch")


def _warn_ignored_with_resume(context: typer.Context) -> None:
    """A resumed run keeps its own settings (only --epochs may change); say so if others were given."""
    sources = {name: context.get_parameter_source(name) for name in RESUME_KEEPS}
    given = [name for name, source in sources.items() if source is not None and source.name != "DEFAULT"]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        console.warn(f"ignoring {flags}: a resumed run keeps the settings it started with (only --epochs "
                     "can change); use --force to start over with new ones")


def _prepare_out(out: Path, resume: bool, force: bool, dist: Any) -> None:
    """Refuse to overwrite a previous run by accident; with --force clear it first (rank 0 clears, the other
    processes wait)."""
    from latentctl import store

    holds_run = (out / store.STATE_JSON_FILE).exists() or (out / store.CONFIG_FILE).exists()
    if holds_run and not resume:
        if not force:
            raise LatentctlError(f"{out} already holds a training run",
                                 hint="pass --resume to continue it, --force to start over, or --out elsewhere")
        if dist.is_main:
            for name in (store.STATE_JSON_FILE, store.STATE_TENSORS_FILE, store.CONFIG_FILE, store.WEIGHTS_FILE,
                         "loss.png"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "samples", ignore_errors=True)
    dist.barrier()


def run_training(trainer: Any, display: type[_TrainingDisplay] | None = None) -> bool:
    """Run ``trainer.train`` with a progress display (a GAN's by default); the first Ctrl-C stops after the
    current step."""
    with _stop_on_interrupt(trainer), (display or _TrainingDisplay)(trainer) as shown:
        return trainer.train(shown.update)


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
        if trainer.dist.enabled:
            console.info(f"stopping all processes at the next loss read (every {trainer.options.log_every} steps) "
                         "and saving a checkpoint")
        else:
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
            self.bar.update(self.task, completed=info["step"], losses=self.step_text(info))
        elif event == "epoch_end":
            console.info(self.epoch_text(info["report"]))

    def step_text(self, info: dict[str, Any]) -> str:
        """The running losses shown beside the bar."""
        return f"D {info['loss_d']:.3f}  G {info['loss_g']:.3f}"

    def epoch_text(self, report: Any) -> str:
        """The line printed after each epoch."""
        return (f"epoch {report.epoch}/{self.trainer.options.epochs}  loss D {report.loss_d:.3f}  "
                f"G {report.loss_g:.3f}  D(x) {report.d_real:.2f}  D(G(z)) {report.d_fake:.2f}  "
                f"{report.seconds:.1f}s" + (f"  -> {report.sample_path}" if report.sample_path else ""))


def _report(trainer: Any, out: Path, finished: bool, json_output: bool, resume_command: str,
            command: str = "train cgan", extra: dict[str, Any] | None = None) -> None:
    if not trainer.dist.is_main:  # rank 0 reports for all
        if not finished:
            raise typer.Exit(EXIT_INTERRUPTED)
        return
    from latentctl.registry import register_written

    training = trainer.model_config().training
    register_written(out)  # a name for --model (latentctl.registry); folders in $LATENTCTL_HOME/models have one
    if json_output:
        console.emit_json({"command": command, "model": str(out), "complete": finished,
                           "epoch": trainer.epoch, "step_in_epoch": trainer.step_in_epoch,
                           "files": sorted(str(p) for p in out.rglob("*") if p.is_file()),
                           "training": training, **(extra or {})})
    if not finished:
        console.info(f"interrupted at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}: checkpoint "
                     f"saved in {out}")
        console.info(f"continue with: {resume_command}")
        raise typer.Exit(EXIT_INTERRUPTED)
    console.info(f"done: {trainer.epoch} epochs in {training['seconds']:.0f}s; model in {out}")
    if not json_output:
        console.emit_path(out)


@app.command("classifier")
def train_classifier(
    context: typer.Context,
    data_root: DataRoot = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write "
                                             "[default: $LATENTCTL_HOME/models/classifier-celeba].")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Total epochs [default: 5; with --resume: "
                                               "the run's own].", rich_help_panel=HYPER)] = None,
    batch_size: Annotated[int, typer.Option(min=2, help=BATCH_HELP, rich_help_panel=HYPER)] = 64,
    lr: Annotated[float, typer.Option(callback=_positive, help="Adam learning rate (the peak, at the first "
                                      "step, with the cosine schedule).", rich_help_panel=HYPER)] = 2e-3,
    lr_schedule: Annotated[LRSchedule, typer.Option(
        "--lr-schedule", rich_help_panel=HYPER,
        help="cosine: from --lr down to 0 along a half cosine over the run's steps (the rare attributes settle "
             "in the small late steps); constant: --lr throughout, as the seed project trained.")] = LRSchedule.cosine,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", help="With several GPUs, BatchNorm statistics over the "
                                          "whole batch, not each GPU's share.", rich_help_panel=HYPER)] = False,
    width: Annotated[int, typer.Option(min=4, help="Channels of the first convolution; doubled at each lower "
                                       "resolution.", rich_help_panel=ARCH)] = 32,
    members: Annotated[int, typer.Option(min=1, max=16, help="Networks trained side by side whose logits are "
                                         "averaged: steering then follows what they agree on, not one "
                                         "network's quirks (see docs/steering.md). Each costs a network's "
                                         "time.", rich_help_panel=ARCH)] = 1,
    size: ImageSize = 64,
    crop: Crop = 178,
    resume: Resume = False,
    force: Force = False,
    device: Device = "auto",
    nproc: Processes = 1,
    precision: PrecisionOption = Precision.auto,
    compile: Compile = None,
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Train the attribute classifier: CelebA's 40 attributes from a face, on CelebA (or synthetic faces).

    Reads the prepared cache of --data-root (made on first use, see `latentctl data prepare`), trains on
    the train split and measures every attribute's accuracy and balanced accuracy on the val split after
    each epoch. Writes the model (safetensors + config.json) and the training state to --out, then
    prints the validation table. Ctrl-C saves and exits; `--resume` continues bit for bit.

    Examples:

        latentctl train classifier --device cuda
        latentctl data synth faces && latentctl train classifier --epochs 3 --json
        latentctl train classifier --resume --epochs 8
        latentctl train classifier --nproc 2 --device cuda --sync-bn
    """
    import torch

    from latentctl import store
    from latentctl.models.classifier import ClassifierConfig
    from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer

    _check_resume_force(resume, force)
    if nproc > 1:
        _run_under_torchrun(context, nproc)
    out = out or paths.model_dir("classifier-celeba")
    custom_data = data_root is not None
    data_root = data_root or paths.data_dir("celeba")
    with _processes(device) as (dist, torch_device):
        if resume and (out / store.STATE_JSON_FILE).is_file():  # a resumed run reads the cache it started with
            size, crop = _run_image_settings(out, size, crop)
        # before --force clears anything: a typo in --data-root loses nothing
        data = AttributeData.from_prepared(_prepared_celeba(data_root, size, crop, dist))
        _prepare_out(out, resume=resume, force=force, dist=dist)
        if resume:
            _warn_ignored_with_resume(context)
            trainer = ClassifierTrainer.resume(out, data, torch_device, epochs=epochs, warn=console.warn, dist=dist)
            _announce_resume(trainer, out)
        else:
            _warn_sync_bn_alone(sync_bn, dist)
            config = ClassifierConfig(image_size=size, channels=3, num_attributes=len(data.names), width=width,
                                      members=members)
            options = ClassifierOptions(epochs=epochs or 5, batch_size=batch_size, lr=lr,
                                        lr_schedule=lr_schedule.value, seed=seed, sync_bn=sync_bn,
                                        precision=precision.value, compile=compile)
            trainer = ClassifierTrainer(config, options, data, out, torch_device, dist=dist)
        console.info(f"training an attribute classifier on {data.fingerprint['name']} "
                     f"({data.train_images.shape[0]:,} training and {data.val_images.shape[0]:,} validation "
                     f"images, {size}x{size}, crop {crop}) on {_where(trainer)} for {trainer.options.epochs} "
                     f"epochs -> {out}")
        torch.set_float32_matmul_precision("high")
        finished = run_training(trainer, _ClassifierDisplay)
        if finished:
            _print_attribute_table(trainer.metrics, data.not_rendered)
        resume_command = _resume_command("classifier", out, data_root if custom_data else None, dist)
        _report(trainer, out, finished, json_output, resume_command, command="train classifier",
                extra={"metrics": trainer.metrics})


class _ClassifierDisplay(_TrainingDisplay):
    def step_text(self, info: dict[str, Any]) -> str:
        return f"loss {info['loss']:.4f}"

    def epoch_text(self, report: Any) -> str:
        return (f"epoch {report.epoch}/{self.trainer.options.epochs}  loss {report.loss:.4f}  validation: "
                f"accuracy {report.mean_accuracy:.1%}  balanced accuracy {report.mean_balanced_accuracy:.1%}  "
                f"{report.seconds:.1f}s")


def _print_attribute_table(metrics: dict[str, Any], not_rendered: list[str]) -> None:
    """Print each attribute's validation accuracy and balanced accuracy, then their means (stderr)."""
    names = list(metrics["accuracy"])
    rows = [[name, f"{metrics['accuracy'][name]:.1%}", f"{metrics['balanced_accuracy'][name]:.1%}",
             f"{metrics['positives'][name] / metrics['images']:.1%}",
             "[dim]not drawn[/]" if name in not_rendered else ""] for name in names]
    console.print_table(f"validation ({metrics['images']:,} images)",
                        ["attribute", "accuracy", "balanced accuracy", "present in", ""], rows)
    console.info(f"mean over the {len(names)} attributes: accuracy {metrics['mean_accuracy']:.1%}, "
                 f"balanced accuracy {metrics['mean_balanced_accuracy']:.1%}")
    drawn = [name for name in names if name not in not_rendered]
    if not_rendered and drawn:
        console.info(f"mean over the {len(drawn)} attributes the synthetic faces draw: accuracy "
                     f"{sum(metrics['accuracy'][n] for n in drawn) / len(drawn):.1%}, balanced accuracy "
                     f"{sum(metrics['balanced_accuracy'][n] for n in drawn) / len(drawn):.1%} (the other "
                     f"{len(not_rendered)} are labels only: nothing in the image says them)")
