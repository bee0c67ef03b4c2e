"""Training runs in model folders: ``latentctl train cgan|gan|classifier`` as one call, ``start``.

``start`` refuses to overwrite a run by accident (``force`` clears it, ``resume`` continues it with its own
settings), trains with Ctrl-C stopping after the current step and saving, and returns a ``RunResult``;
progress goes to ``on_event``, messages to stderr. Under torchrun every process makes the same call
(rank 0 builds caches first, writes and speaks); ``relaunch`` starts a command line again under torchrun.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from latentctl import console, files, lookup, paths, registry, store
from latentctl.errors import LatentctlError, UsageError
from latentctl.train import AUGMENT_BELOW, FACE_R1, distributed
from latentctl.train.distributed import Distributed
from latentctl.train.loop import Callback, EpochLoop
from latentctl.train.options import (
    CONDITIONS,
    RESUME_FREE,
    RESUME_KEEPS,
    RUN_OPTIONS,
    ClassifierOptions,
    ClassifierRunOptions,
    EncoderOptions,
    RunOptions,
    TrainOptions,
)

EXIT_INTERRUPTED = distributed.EXIT_INTERRUPTED


@dataclass
class RunResult:
    """Where a training run stands when ``start`` returns: finished, or stopped and saved."""

    kind: str
    model: Path  # the model folder
    complete: bool  # False: stopped early (Ctrl-C) with a checkpoint saved; resume_command continues it
    epoch: int  # epochs completed
    step_in_epoch: int  # steps done in the next one
    files: list[Path]  # every file in the model folder (rank 0 only)
    training: dict[str, Any]  # how the model was trained: config.json's record (rank 0 only)
    resume_command: str
    metrics: dict[str, Any] | None = None  # the classifier's validation metrics after its last epoch
    main_process: bool = True  # False on the processes beside torchrun's rank 0, which report nothing
    trainer: Any = field(default=None, repr=False)  # the trainer, networks and all, as the run left it

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document of ``latentctl train`` (less its "command")."""
        document = {"model": str(self.model), "complete": self.complete, "epoch": self.epoch,
                    "step_in_epoch": self.step_in_epoch, "files": [str(path) for path in self.files],
                    "training": self.training}
        return document | ({"metrics": self.metrics} if self.kind == "classifier" else {})


def start(kind: str, *, out: Path | None = None, data_root: Path | None = None, options: RunOptions | None = None,
          resume: bool = False, force: bool = False, device: str = "auto", given: Collection[str] = (),
          on_event: Callback | None = None) -> RunResult:
    """Train a model of ``kind`` ("cgan", "gan", "classifier" or "encoder") into ``out``, or go on with the run there.

    ``options`` is the kind's run options (``latentctl.train.options``; default: its defaults); a resumed run
    keeps its own, all but ``epochs``, and warns about those of ``given`` (the names of the options a
    user set) that it ignores. ``out`` and ``data_root`` default to the kind's folders in $LATENTCTL_HOME.
    ``on_event`` gets the trainer's events (``latentctl.train.loop``), "preparing" {done, total} while a
    dataset cache is built, and "end" {complete, trainer}.
    """
    if kind not in RUN_OPTIONS:
        raise ValueError(f"unknown kind of run {kind!r}: one of {', '.join(RUN_OPTIONS)}")
    options = options if options is not None else RUN_OPTIONS[kind]()
    check_request(kind, options, resume=resume, force=force)
    if out is None and kind == "encoder":
        from latentctl.latent.encoders import default_encoder_dir

        out = default_encoder_dir(lookup.resolve_model(options.model, "gan-celeba"))
    out = Path(out) if out is not None else paths.model_dir(options.MODEL)
    custom_data = data_root is not None
    # a resumed run reads its own data
    if resume and kind in ("gan", "classifier") and (out / store.STATE_JSON_FILE).is_file():
        options = replace(options, data=_run_data(out))
    data_root = Path(data_root) if data_root is not None else paths.data_dir(getattr(options, "data", options.DATA))
    notify = on_event or (lambda event, info: None)
    with _processes(device) as (dist, torch_device):
        request = _Request(out, data_root, options, resume, force, set(given), dist, torch_device, notify)
        trainer = {"cgan": _digit_gan, "gan": _face_gan, "classifier": _classifier, "encoder": _encoder}[kind](request)
        torch.set_float32_matmul_precision("high")
        log = _tensorboard(options.log_dir, trainer) if options.log_dir is not None and dist.is_main else None
        try:
            finished = train(trainer, notify if log is None else lambda event, info: (log(event, info),
                                                                                     notify(event, info)))
        finally:
            if log is not None:
                log.writer.close()
        result = RunResult(kind, out, finished, trainer.epoch, trainer.step_in_epoch, [], {},
                           _resume_command(kind, out, data_root if custom_data else None, dist),
                           trainer.metrics if kind == "classifier" else None, dist.is_main, trainer)
        if dist.is_main:  # rank 0 reports for all
            registry.register_written(out)  # a name for --model; folders in $LATENTCTL_HOME/models have one
            result.files = sorted((path for path in out.rglob("*") if path.is_file()), key=str)
            result.training = trainer.model_config().training
        return result


def check_request(kind: str, options: RunOptions, *, resume: bool, force: bool) -> None:
    """Raise a UsageError for settings that do not go together (checked before anything is loaded)."""
    if not isinstance(options, RUN_OPTIONS[kind]):
        raise TypeError(f"train {kind} takes {RUN_OPTIONS[kind].__name__}, not {type(options).__name__}")
    if resume and force:
        raise UsageError("--resume continues a run and --force replaces it: pick one", option="--resume/--force")
    if kind == "gan":
        if options.condition not in CONDITIONS:
            raise UsageError(f"unknown condition {options.condition!r}: use one of {', '.join(CONDITIONS)}",
                             option="--condition")
        if options.attribute and options.condition != "attributes" and not resume:
            raise UsageError("--attribute needs --condition attributes", option="--attribute")


def relaunch(argv: Sequence[str], processes: int) -> int:
    """Run latentctl's command line ``argv`` again, less its ``--nproc``, in ``processes`` processes on this
    machine under torchrun; return the exit status to leave with."""
    if distributed.launched_by_torchrun():
        raise UsageError("torchrun started this process already; its --nproc-per-node says how many processes "
                         "there are", option="--nproc")
    return distributed.launch(without_nproc(argv), processes)


def without_nproc(argv: Sequence[str]) -> list[str]:
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


def train(trainer: EpochLoop, on_event: Callback | None = None) -> bool:
    """Train ``trainer`` to its last epoch; return False if Ctrl-C stopped it (after the current step, saved).

    ``on_event`` gets the trainer's events, then "end" {complete, trainer}."""
    with stop_on_interrupt(trainer):
        finished = trainer.train(on_event)
    if on_event is not None:
        on_event("end", {"complete": finished, "trainer": trainer})
    return finished


@contextmanager
def stop_on_interrupt(trainer: EpochLoop) -> Iterator[None]:
    """While inside, the first Ctrl-C asks ``trainer`` to stop and save; a second aborts, except during a save."""
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


# ------------------------------------------------------------------------------------------- the three kinds

@dataclass
class _Request:
    out: Path
    data_root: Path
    options: RunOptions
    resume: bool
    force: bool
    given: set[str]
    dist: Distributed
    device: torch.device
    notify: Callback

    @property
    def epochs(self) -> int:
        """The epochs a new run trains."""
        return self.options.epochs if self.options.epochs is not None else self.options.EPOCHS


def _digit_gan(request: _Request) -> Any:
    from latentctl.train.cgan import default_config, load_digits

    options = request.options
    dataset = load_digits(request.data_root)  # before --force clears anything: a typo in --data-root loses nothing
    train_options = TrainOptions(epochs=request.epochs, batch_size=options.batch_size, lr=options.lr,
                                 beta1=options.beta1, beta2=options.beta2, ema_decay=options.ema_decay,
                                 mode_seeking=options.mode_seeking, seed=options.seed,
                                 sample_every=options.sample_every, sync_bn=options.sync_bn,
                                 precision=options.precision, compile=options.compile)
    trainer = _gan(request, "cgan", dataset, default_config(options.latent_dim, options.gen_width, options.disc_width),
                   train_options)
    return _watch_fid(request, trainer, request.data_root)


def _face_gan(request: _Request) -> Any:
    from latentctl.train.faces import default_config, faces_dataset

    options, out = request.options, request.out
    size, crop, attribute = options.size, options.crop, options.attribute
    conditioned = options.condition == "attributes"
    if request.resume and (out / store.STATE_JSON_FILE).is_file():  # a resumed run reads the cache it started with
        size, crop = _run_image_settings(out, size, crop)
        attribute = _run_attributes(out)
        conditioned = attribute is not None
    prepared = _prepared_celeba(request, size, crop)
    names = _condition_attributes(prepared, attribute) if conditioned else None
    # an imported folder trains on all its images: its validation split is for classifiers only
    dataset = faces_dataset(prepared, "all" if prepared.meta.get("dataset") == "folder" else "train", names)
    augment = options.augment if options.augment is not None else dataset.images.shape[0] < AUGMENT_BELOW
    r1 = options.r1
    if r1 is None:
        r1 = 0.0 if options.sync_bn else FACE_R1
        if options.sync_bn and not request.resume:
            console.warn("--sync-bn turns the R1 penalty off: SyncBatchNorm cannot differentiate it")
    train_options = TrainOptions(epochs=request.epochs, batch_size=options.batch_size, lr=options.lr,
                                 beta1=options.beta1, beta2=options.beta2, ema_decay=options.ema_decay,
                                 flip=options.flip, augment=augment, r1=r1, seed=options.seed,
                                 sample_every=options.sample_every,
                                 sync_bn=options.sync_bn, precision=options.precision, compile=options.compile,
                                 attribute_loss=options.attribute_loss if names else 0.0)
    config = default_config(size, options.latent_dim, options.gen_width, options.disc_width,
                            num_attributes=len(names or []), faces=dataset.images.shape[0])
    return _watch_fid(request, _gan(request, "gan", dataset, config, train_options), prepared.path)


def _gan(request: _Request, kind: str, dataset: Any, config: Any, train_options: TrainOptions) -> Any:
    from latentctl.train.gan import GANTrainer

    trainer = _open(request, GANTrainer, dataset, kind, lambda: GANTrainer(
        config, train_options, dataset, request.out, request.device, kind=kind, dist=request.dist))
    what = {"class": "a conditional DCGAN", "none": "a DCGAN",
            "attributes": f"a DCGAN conditioned on {trainer.config.num_attributes} attributes"}
    console.info(f"training {what[trainer.config.condition]} on {dataset.name} ({dataset.images.shape[0]:,} images) "
                 f"on {_where(trainer)} for {trainer.options.epochs} epochs -> {request.out}")
    return trainer


def _watch_fid(request: _Request, trainer: Any, data_folder: Path) -> Any:
    """Have ``trainer`` measure FID every ``--fid-every`` epochs against its training images, whose features are
    cached in ``data_folder``/fid as ``eval fid`` caches them. Rank 0 measures; the Inception loads before
    training starts, so missing weights stop the run at once."""
    options = request.options
    if options.fid_every and request.dist.is_main:
        from latentctl.eval.fid import CACHE_FOLDER, FIDProbe, Inception, real_from_images

        dataset = trainer.dataset
        real = real_from_images(dataset.name, dataset.images, data_folder / CACHE_FOLDER,
                                dataset.fingerprint()["sha256"])
        trainer.fid_probe = FIDProbe(real, options.fid_images, Inception(options.inception_weights, request.device))
    trainer.fid_every = options.fid_every
    return trainer


def _tensorboard(log_dir: Path, trainer: Any) -> Any:
    from latentctl.train.tensorboard import TensorBoardLog

    return TensorBoardLog(Path(log_dir), trainer)


def _classifier(request: _Request) -> Any:
    from latentctl.models.classifier import ClassifierConfig
    from latentctl.train.classifier import AttributeData, ClassifierTrainer

    options: ClassifierRunOptions = request.options
    size, crop = options.size, options.crop
    if request.resume and (request.out / store.STATE_JSON_FILE).is_file():  # a resumed run reads its own cache
        size, crop = _run_image_settings(request.out, size, crop)
    # before --force clears anything: a typo in --data-root loses nothing
    prepared = _prepared_celeba(request, size, crop)
    if not prepared.attribute_names or not len(prepared.indices("val")):
        raise LatentctlError(f"{prepared.fingerprint()['name']} has no "
                             + ("labels" if not prepared.attribute_names else "validation images")
                             + ": a classifier learns attributes and is measured on the validation split",
                             hint="import the folder again with --labels labels.csv (one 0/1 column per attribute) "
                                  "and --force, with enough images that one in ten is held out")
    data = AttributeData.from_prepared(prepared)

    def new() -> ClassifierTrainer:
        config = ClassifierConfig(image_size=size, channels=3, num_attributes=len(data.names), width=options.width,
                                  members=options.members)
        train_options = ClassifierOptions(epochs=request.epochs, batch_size=options.batch_size, lr=options.lr,
                                          lr_schedule=options.lr_schedule, seed=options.seed, sync_bn=options.sync_bn,
                                          precision=options.precision, compile=options.compile)
        return ClassifierTrainer(config, train_options, data, request.out, request.device, dist=request.dist)

    trainer = _open(request, ClassifierTrainer, data, "classifier", new)
    console.info(f"training an attribute classifier on {data.fingerprint['name']} "
                 f"({data.train_images.shape[0]:,} training and {data.val_images.shape[0]:,} validation "
                 f"images, {size}x{size}, crop {crop}) on {_where(trainer)} for {trainer.options.epochs} "
                 f"epochs -> {request.out}")
    return trainer


def _encoder(request: _Request) -> Any:
    from latentctl.latent.encoders import generator_record
    from latentctl.latent.inversion import load_face_models
    from latentctl.models.configs import EncoderConfig
    from latentctl.train.encoder import EncoderTrainer, GeneratorData

    options, state_file = request.options, request.out / store.STATE_JSON_FILE
    model, classifier = options.model, options.classifier
    if request.resume and state_file.is_file():  # a resumed run keeps its generator and classifier
        state = files.read_json(state_file)
        model, classifier = (state.get("generator") or {}).get("path"), state.get("classifier")
    models = load_face_models(model, classifier, str(request.device))
    if models.config.conditioned_on_attributes:
        raise LatentctlError(f"{models.model_dir} is conditioned on attributes: an encoder guesses a latent alone, "
                             "not the attribute inputs", hint="invert it without an encoder (random starts)")
    if request.resume and state_file.is_file() and classifier is None:
        models.classifier, models.classifier_dir = None, None
    data = GeneratorData(models.generator, models.config, generator_record(models.model_dir), models.classifier,
                         models.classifier_dir)

    def new() -> EncoderTrainer:
        config = EncoderConfig(image_size=models.config.image_size, channels=models.config.channels,
                               latent_dim=models.config.latent_dim, width=options.width)
        train_options = EncoderOptions(epochs=request.epochs, epoch_images=options.epoch_images,
                                       batch_size=options.batch_size, lr=options.lr,
                                       latent_weight=options.latent_weight, pixel_weight=options.pixel_weight,
                                       feature_weight=options.feature_weight, seed=options.seed,
                                       precision=options.precision, compile=options.compile)
        return EncoderTrainer(config, train_options, data, request.out, request.device, dist=request.dist)

    trainer = _open(request, EncoderTrainer, data, "encoder", new)
    console.info(f"training a latent encoder for {models.model_dir} on its own faces"
                 + (f" (and {models.classifier_dir}'s features)" if models.classifier is not None else "")
                 + f" on {_where(trainer)} for {trainer.options.epochs} epochs -> {request.out}")
    return trainer


def _open(request: _Request, trainer_type: Any, data: Any, kind: str, new: Callable[[], Any]) -> Any:
    """The trainer of the run in ``out``: resumed, or ``new()`` in a folder cleared as asked."""
    _prepare_out(request)
    if not request.resume:
        if request.options.sync_bn and not request.dist.enabled:
            console.warn("--sync-bn does nothing in a single process: its BatchNorm already sees the whole batch")
        return new()
    ignored = sorted((f.name for f in fields(request.options) if f.name not in RESUME_FREE and f.name in request.given),
                     key=RESUME_KEEPS.index)
    if ignored:
        flags = ", ".join("--" + name.replace("_", "-") for name in ignored)
        console.warn(f"ignoring {flags}: a resumed run keeps the settings it started with (only --epochs "
                     "can change); use --force to start over with new ones")
    trainer = trainer_type.resume(request.out, data, request.device, epochs=request.options.epochs, warn=console.warn,
                                  dist=request.dist)
    if trainer.kind != kind:
        raise LatentctlError(f"{request.out} holds a {trainer.kind} run, not a {kind} run",
                             hint=f"resume it with 'latentctl train {trainer.kind} --resume'")
    if trainer.epoch >= trainer.options.epochs:
        raise LatentctlError(f"{request.out} has already trained {trainer.epoch} of {trainer.options.epochs} "
                             "epochs", hint=f"pass --epochs N with N > {trainer.epoch} to train further")
    console.info(f"resuming {request.out} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    return trainer


# ----------------------------------------------------------------------------------------------- helpers

def _prepare_out(request: _Request) -> None:
    """Refuse to overwrite a previous run by accident; with ``force`` clear it first (rank 0 clears, the other
    processes wait)."""
    out = request.out
    holds_run = (out / store.STATE_JSON_FILE).exists() or (out / store.CONFIG_FILE).exists()
    if holds_run and not request.resume:
        if not request.force:
            raise LatentctlError(f"{out} already holds a training run",
                                 hint="pass --resume to continue it, --force to start over, or --out elsewhere")
        if request.dist.is_main:
            for name in (store.STATE_JSON_FILE, store.STATE_TENSORS_FILE, store.CONFIG_FILE, store.WEIGHTS_FILE,
                         "loss.png"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "samples", ignore_errors=True)
    request.dist.barrier()


def _run_image_settings(out: Path, size: int, crop: int) -> tuple[int, int]:
    """The image size and crop a run in ``out`` started with (a resumed run keeps them)."""
    state = files.read_json(out / store.STATE_JSON_FILE)
    dataset = state.get("dataset") or {}
    return int(dataset.get("size", size)), int(dataset.get("crop", crop))


def _run_attributes(out: Path) -> list[str] | None:
    """The attributes a run in ``out`` is conditioned on (a resumed run keeps them), or None if it is not."""
    state = files.read_json(out / store.STATE_JSON_FILE)
    if not (state.get("gan") or {}).get("num_attributes"):
        return None
    names = (state.get("dataset") or {}).get("attributes")
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise LatentctlError(f"{out / store.STATE_JSON_FILE} is damaged (no list of the attributes the run is "
                             "conditioned on)", hint="start over with --force")
    return names


def _run_data(out: Path) -> str:
    """The dataset a run in ``out`` trains on: an imported folder's name, or "celeba"."""
    dataset = files.read_json(out / store.STATE_JSON_FILE).get("dataset") or {}
    return str(dataset["name"]) if dataset.get("folder") else "celeba"


def _condition_attributes(prepared: Any, asked: list[str] | None) -> list[str]:
    """The attributes to condition on: ``asked`` (names as users type them), or every one the data draws."""
    from latentctl.latent.attributes import match_attribute
    from latentctl.train.faces import drawn_attributes

    if not prepared.attribute_names:
        raise LatentctlError(f"{prepared.fingerprint()['name']} has no attributes to condition on",
                             hint="import it again with --labels labels.csv and --force, or drop --condition")
    if not asked:
        return drawn_attributes(prepared)
    names = list(dict.fromkeys(match_attribute(name, prepared.attribute_names) for name in asked))
    hidden = [name for name in names if name in prepared.not_rendered]
    if hidden:
        raise LatentctlError(f"this synthetic face set does not draw {', '.join(hidden)}: a generator cannot "
                             "learn to show it",
                             hint=f"leave it out; the set leaves out {', '.join(prepared.not_rendered)}")
    return names


def _prepared_celeba(request: _Request, size: int, crop: int) -> Any:
    """Open the prepared CelebA cache, building it (events "preparing" {done, total}) when it is missing or stale.

    With several processes never two build one cache at once: rank 0 first, then the first process of
    each other machine (whose disk may not be rank 0's), while the others wait; then all open it."""
    from latentctl.data.celeba import load_celeba
    from latentctl.data.folders import IMPORT_HINT, is_folder_dataset, load_folder
    from latentctl.data.prepare import ensure_prepared

    if is_folder_dataset(request.data_root):  # imported at a given size: nothing to build
        return load_folder(request.data_root, size, crop)
    data = getattr(request.options, "data", "celeba")
    if data != "celeba":
        raise LatentctlError(f"there is no dataset named {data!r} in {request.data_root}", hint=IMPORT_HINT)

    def starting(reason: str, count: int) -> None:
        console.info(f"preparing CelebA at {size}x{size} (crop {crop}) for training ({reason}): "
                     f"{count:,} images, once")

    def prepared() -> Any:
        load_celeba(request.data_root)  # a missing dataset fails here with the import hint, before any progress
        return ensure_prepared(request.data_root, size, crop, on_start=starting,
                               on_progress=lambda done, total: request.notify("preparing", {"done": done,
                                                                                             "total": total}))

    dist = request.dist
    if not dist.enabled:
        return prepared()
    cache = None
    for builds in (dist.is_main, dist.local_rank == 0 and not dist.is_main):
        if builds:
            cache = prepared()
        dist.barrier()
    return cache if cache is not None else prepared()


def _resume_command(kind: str, out: Path, data_root: Path | None, dist: Distributed) -> str:
    """The command that continues an interrupted run (with --data-root only when one was given, and on one
    machine with as many processes: the same number continues exactly)."""
    command = f"latentctl train {kind} --resume --out {out}" + (f" --data-root {data_root}" if data_root else "")
    one_machine = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size)) == dist.world_size
    if dist.enabled and one_machine:
        command += f" --nproc {dist.world_size}"
    return command


def _where(trainer: Any) -> str:
    """The device, or the processes and their share of the batch; and how the step computes."""
    if not trainer.dist.enabled:
        return f"{trainer.device} ({trainer.step_settings.describe()})"
    kind = "GPUs" if trainer.device.type == "cuda" else "CPU processes"
    return (f"{trainer.dist.world_size} {kind} ({trainer.options.batch_size // trainer.dist.world_size} of the "
            f"{trainer.options.batch_size} images of each step each; {trainer.step_settings.describe()})")


@contextmanager
def _processes(device: str) -> Iterator[tuple[Distributed, torch.device]]:
    """Yield this process's place among those torchrun started, and its device (a single process on
    ``device`` without torchrun). Only rank 0 prints; a failure is reported once, by one rank, and ends
    every rank, none left waiting for the others."""
    rank = distributed.environment_rank()
    was_quiet = console.stderr.quiet
    console.stderr.quiet = was_quiet or rank != 0
    try:
        yield distributed.start(device)
    except BaseException as error:
        if not distributed.report_failure(error):  # another rank says what happened: leave quietly
            raise SystemExit(_exit_status(error)) from None
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
    return 2 if isinstance(error, UsageError) else 1
