"""``latentctl train ...``: each command maps its flags to its run options (latentctl.train.options), makes one
call, latentctl.train.runs.start, and renders the run's progress and result."""

from __future__ import annotations

import sys
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from latentctl import console
from latentctl.cli import options as flags
from latentctl.cli.options import DataRoot, Device, InceptionWeights, Json, Seed
from latentctl.cli.render import TrainingProgress
from latentctl.train import AUGMENT_BELOW, FACE_R1
from latentctl.train.options import CONDITIONS, LR_SCHEDULES, PRECISIONS, RUN_OPTIONS
from latentctl.train.options import CGANRunOptions as CGAN
from latentctl.train.options import ClassifierRunOptions as Classifier
from latentctl.train.options import EncoderRunOptions as Encoder
from latentctl.train.options import GANRunOptions as GAN

app = typer.Typer(help="Train models.", no_args_is_help=True)

HYPER, ARCH, RUNTIME, WATCH = "Hyper-parameters", "Architecture", "Runtime", "Logs and metrics"
Precision = Enum("Precision", [(name, name) for name in PRECISIONS], type=str)  # see latentctl.train.speed
Condition = Enum("Condition", [(name, name) for name in CONDITIONS], type=str)  # see latentctl.models.dcgan
LRSchedule = Enum("LRSchedule", [(name, name) for name in LR_SCHEDULES], type=str)


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


def _image_size(value: int) -> int:
    from latentctl.models.configs import base_size

    try:
        base_size(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value


CGANOut, GANOut, ClassifierOut = (
    Annotated[Path | None, typer.Option("--out", help="Model folder to write [default: $LATENTCTL_HOME/models/"
                                        f"{options.MODEL}].")] for options in (CGAN, GAN, Classifier))
CGANEpochs, GANEpochs, ClassifierEpochs = (
    Annotated[int | None, typer.Option(min=1, rich_help_panel=HYPER, help=f"Total epochs [default: {options.EPOCHS}; "
                                       "with --resume: the run's own].")] for options in (CGAN, GAN, Classifier))


def _lr(help: str) -> Any:
    return Annotated[float, typer.Option(callback=_positive, help=f"Adam learning rate ({help}).",
                                         rich_help_panel=HYPER)]


BatchSize = Annotated[int, typer.Option(min=2, rich_help_panel=HYPER, help="Images per step, all processes together "
                                        "(with --nproc N each takes 1/N; the learning rate is for this batch).")]
Beta1 = Annotated[float, typer.Option(min=0.0, max=0.999, help="Adam's first-moment decay (0.5 as in DCGAN: less "
                                      "momentum, steadier GAN games).", rich_help_panel=HYPER)]
Beta2 = Annotated[float, typer.Option(min=0.0, max=0.9999, help="Adam's second-moment decay.", rich_help_panel=HYPER)]
EmaDecay = Annotated[float, typer.Option(min=0.0, max=0.9999, help="Decay of the generator's moving average, which "
                                         "is what gets saved.", rich_help_panel=HYPER)]
DiscriminatorSyncBN = Annotated[bool, typer.Option("--sync-bn", rich_help_panel=HYPER, help=(
    "With several GPUs, the discriminator's BatchNorm statistics over the whole batch, not each GPU's share."))]
LatentDim = Annotated[int, typer.Option(min=1, help="Noise size.", rich_help_panel=ARCH)]
GenWidth = Annotated[int, typer.Option(min=4, help="Generator width (channels of its last hidden block).",
                                       rich_help_panel=ARCH)]
DiscWidth = Annotated[int, typer.Option(min=4, help="Discriminator width (channels of its first block).",
                                        rich_help_panel=ARCH)]
ImageSize = Annotated[int, typer.Option(min=8, max=1024, callback=_image_size, help="Image side in pixels (s * 2**k "
                                        "with 4 <= s <= 7: 32, 64, 128...).", rich_help_panel=ARCH)]
Crop = Annotated[int, typer.Option(min=8, max=178, help="Centred square cut from CelebA's 178x218 images before "
                                   "resizing (see 'latentctl data prepare').", rich_help_panel=ARCH)]
Data = Annotated[str, typer.Option("--data", metavar="NAME", help="celeba (real or synthetic, in --data-root), or "
                                   "the NAME of a folder imported with 'latentctl data import folder'.")]
SampleEvery = Annotated[int, typer.Option(min=1, help="Write a sample grid every N epochs.")]
LogDir = Annotated[Path | None, typer.Option("--log-dir", file_okay=False, rich_help_panel=WATCH, help=(
    "Write TensorBoard logs there: losses, learning rate, images/s, FID, a sample grid per epoch (needs "
    "latentctl[tensorboard]); a resume may change it."))]
FidEvery = Annotated[int, typer.Option("--fid-every", min=0, rich_help_panel=WATCH, help=(
    "Measure FID and KID of the EMA generator every N epochs and after the last (0: never), as 'latentctl eval "
    "fid' does; recorded in the training state and config.json, plotted in fid.png."))]
FidImages = Annotated[int, typer.Option("--fid-images", min=2, rich_help_panel=WATCH, help=(
    "Generated and real images each FID reads."))]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")]
Force = Annotated[bool, typer.Option("--force", help="Start over, replacing the run in --out.")]
Processes = Annotated[int, typer.Option("--nproc", min=1, rich_help_panel=RUNTIME, help="Train in N processes on this "
                                        "machine, started with torchrun: one per GPU, or N CPU processes with --device "
                                        "cpu. For several machines run torchrun yourself (docs/distributed.md).")]
PrecisionOption = Annotated[Precision, typer.Option(
    "--precision", rich_help_panel=RUNTIME,
    help="auto: bf16 autocast on CUDA and on CPUs with bf16 instructions (AVX-512 BF16 or AMX), float32 on other "
         "CPUs, all with channels-last tensors (docs/performance.md). "
         "fp32: the reference computation, the same numbers as before any speed-up, bit for bit (slower). bf16: "
         "bf16 autocast anywhere (on CPUs without AVX-512 BF16 or AMX much slower).")]
Compile = Annotated[bool | None, typer.Option(
    "--compile/--no-compile", rich_help_panel=RUNTIME, show_default=False,
    help="torch.compile the networks (a minute of compiling, then faster steps). [default: on CUDA yes, on the CPU "
         "no: slower there]")]


@app.command("cgan")
def train_cgan(
    context: typer.Context, data_root: DataRoot = None, out: CGANOut = None, epochs: CGANEpochs = None,
    batch_size: BatchSize = CGAN.batch_size, lr: _lr("both networks") = CGAN.lr, beta1: Beta1 = CGAN.beta1,
    beta2: Beta2 = CGAN.beta2, ema_decay: EmaDecay = CGAN.ema_decay,
    mode_seeking: Annotated[float, typer.Option(min=0.0, rich_help_panel=HYPER, help=(
        "Weight of a mode-seeking term that pushes for more variety within each digit (0: off)."))] = CGAN.mode_seeking,
    sync_bn: DiscriminatorSyncBN = CGAN.sync_bn, latent_dim: LatentDim = CGAN.latent_dim,
    gen_width: GenWidth = CGAN.gen_width, disc_width: DiscWidth = CGAN.disc_width,
    sample_every: SampleEvery = CGAN.sample_every, resume: Resume = False, force: Force = False,
    device: Device = "auto", nproc: Processes = 1, precision: PrecisionOption = CGAN.precision,
    compile: Compile = CGAN.compile, seed: Seed = CGAN.seed, log_dir: LogDir = None, fid_every: FidEvery = 0,
    fid_images: FidImages = CGAN.fid_images, inception_weights: InceptionWeights = None, json_output: Json = False,
) -> None:
    """Train the conditional DCGAN on MNIST (or synthetic digits).

    Writes the model (EMA generator, safetensors + config.json), a sample grid per epoch (one row per
    digit), a loss curve and the training state to --out. Ctrl-C saves and exits; `--resume` continues.

    Examples:

        latentctl data download mnist && latentctl train cgan
        latentctl train cgan --epochs 5 --device cuda
        latentctl train cgan --resume --epochs 30
        latentctl train cgan --nproc 4 --device cuda --batch-size 512
        latentctl train cgan --fid-every 5 --log-dir runs/tb
    """
    _train(context, "cgan", locals())


@app.command("gan")
def train_gan(
    context: typer.Context, data: Data = GAN.data, data_root: DataRoot = None, out: GANOut = None,
    epochs: GANEpochs = None,
    batch_size: BatchSize = GAN.batch_size,
    lr: _lr("both networks; the seed projects' 1e-3, which the R1 penalty keeps steady") = GAN.lr,
    beta1: Beta1 = GAN.beta1, beta2: Beta2 = GAN.beta2, ema_decay: EmaDecay = GAN.ema_decay,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Mirror half of the real faces left-right (twice the "
                                       "data for free).", rich_help_panel=HYPER)] = GAN.flip,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", show_default=False, rich_help_panel=HYPER,
                                                 help="DiffAugment what the discriminator sees (colour, translation, "
                                                 f"cutout) [default: below {AUGMENT_BELOW:,} images].")] = GAN.augment,
    r1: Annotated[float | None, typer.Option(
        "--r1", min=0.0, show_default=False, rich_help_panel=HYPER,
        help=f"Weight (gamma) of the R1 penalty on the discriminator's gradient at real faces; 0 turns it off "
             f"[default: {FACE_R1:g}, or 0 with --sync-bn, which cannot differentiate it].")] = GAN.r1,
    attribute_loss: Annotated[float, typer.Option("--attribute-loss", min=0.0, rich_help_panel=HYPER, help=(
        "With --condition attributes: weight of the discriminator's auxiliary attribute classifier, which makes the "
        "generator show every attribute it is given; 0 leaves the projection alone."))] = GAN.attribute_loss,
    sync_bn: DiscriminatorSyncBN = GAN.sync_bn, latent_dim: LatentDim = GAN.latent_dim,
    gen_width: GenWidth = GAN.gen_width, disc_width: DiscWidth = GAN.disc_width,
    condition: Annotated[Condition, typer.Option(
        "--condition", rich_help_panel=ARCH,
        help="none: faces from noise alone. attributes: the generator also takes the face's binary attributes "
             "(Male, Smiling, Eyeglasses...), so 'latentctl sample --with Male' and 'steer --method label' can "
             "ask for them.")] = GAN.condition,
    attribute: Annotated[list[str] | None, typer.Option(
        "--attribute", rich_help_panel=ARCH, show_default=False,
        help="With --condition attributes: condition on this attribute (repeatable) [default: every attribute the "
             "data draws: all 40 of CelebA, the 29 a synthetic set renders].")] = None,
    size: ImageSize = GAN.size, crop: Crop = GAN.crop, sample_every: SampleEvery = GAN.sample_every,
    resume: Resume = False, force: Force = False, device: Device = "auto", nproc: Processes = 1,
    precision: PrecisionOption = GAN.precision, compile: Compile = GAN.compile, seed: Seed = GAN.seed,
    log_dir: LogDir = None, fid_every: FidEvery = 0, fid_images: FidImages = GAN.fid_images,
    inception_weights: InceptionWeights = None, json_output: Json = False,
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
        latentctl train gan --fid-every 5 --log-dir runs/tb --device cuda
        latentctl train gan --data pets --epochs 200 --out models/gan-pets
    """
    _train(context, "gan", locals())


@app.command("classifier")
def train_classifier(
    context: typer.Context, data: Data = Classifier.data, data_root: DataRoot = None, out: ClassifierOut = None,
    epochs: ClassifierEpochs = None, batch_size: BatchSize = Classifier.batch_size,
    lr: _lr("the peak, at the first step, with the cosine schedule") = Classifier.lr,
    lr_schedule: Annotated[LRSchedule, typer.Option("--lr-schedule", rich_help_panel=HYPER, help=(
        "cosine: from --lr down to 0 along a half cosine over the run's steps (the rare attributes settle in the "
        "small late steps); constant: --lr throughout, as the seed project trained."))] = Classifier.lr_schedule,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", rich_help_panel=HYPER, help=(
        "With several GPUs, BatchNorm statistics over the whole batch, not each GPU's share."))] = Classifier.sync_bn,
    width: Annotated[int, typer.Option(min=4, help="Channels of the first convolution; doubled at each lower "
                                       "resolution.", rich_help_panel=ARCH)] = Classifier.width,
    members: Annotated[int, typer.Option(min=1, max=16, rich_help_panel=ARCH, help=(
        "Networks trained side by side whose logits are averaged: steering then follows what they agree on, not one "
        "network's quirks (see docs/steering.md). Each costs a network's time."))] = Classifier.members,
    size: ImageSize = Classifier.size, crop: Crop = Classifier.crop, resume: Resume = False, force: Force = False,
    device: Device = "auto", nproc: Processes = 1, precision: PrecisionOption = Classifier.precision,
    compile: Compile = Classifier.compile, seed: Seed = Classifier.seed, log_dir: LogDir = None,
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
    _train(context, "classifier", locals())


@app.command("encoder")
def train_encoder(
    context: typer.Context, model: flags.FaceModel = None, classifier: flags.Classifier = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write [default: the generator's "
                                             "folder with -encoder appended, where invert finds it].")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, rich_help_panel=HYPER, help=f"Total epochs [default: "
                                               f"{Encoder.EPOCHS}; with --resume: the run's own].")] = None,
    epoch_images: Annotated[int, typer.Option(min=2, rich_help_panel=HYPER, help=(
        "Faces the generator draws per epoch (new ones each epoch)."))] = Encoder.epoch_images,
    batch_size: BatchSize = Encoder.batch_size, lr: _lr("the encoder") = Encoder.lr,
    latent_weight: Annotated[float, typer.Option(min=0.0, rich_help_panel=HYPER, help=(
        "Weight of the latent's squared error."))] = Encoder.latent_weight,
    pixel_weight: Annotated[float, typer.Option(min=0.0, rich_help_panel=HYPER, help=(
        "Weight of the pixels' squared error of the face the guess draws."))] = Encoder.pixel_weight,
    feature_weight: Annotated[float, typer.Option(min=0.0, rich_help_panel=HYPER, help=(
        "Weight of the classifier's features of that face (as invert's)."))] = Encoder.feature_weight,
    width: Annotated[int, typer.Option(min=4, rich_help_panel=ARCH, help=(
        "Channels of the first convolution; doubled at each lower resolution."))] = Encoder.width,
    resume: Resume = False, force: Force = False, device: Device = "auto",
    precision: PrecisionOption = Encoder.precision, compile: Compile = Encoder.compile, seed: Seed = Encoder.seed,
    json_output: Json = False,
) -> None:
    """Train a latent encoder for a face GAN on the GAN's own faces: invert's fast first guess.

    Each step the GAN draws faces from new latents and the encoder learns to map each face back to its
    latent: the loss is the latent's error plus the error of the face the guess draws (pixels, and the
    classifier's features when there is one). The encoder records the GAN's weights' hash; invert and edit use
    it only with that GAN, and find it by default beside it (GAN folder + -encoder). Ctrl-C saves and exits;
    `--resume` continues bit for bit.

    Examples:

        latentctl train encoder
        latentctl train encoder --model models/gan --epochs 5 && latentctl invert me.jpg --model models/gan
        latentctl train encoder --model gan-celeba --out enc --resume --epochs 20
    """
    _train(context, "encoder", locals())


def _train(context: typer.Context, kind: str, arguments: dict[str, Any]) -> None:
    """Start or resume the run the command's arguments ask for, showing its progress; report the result."""
    from latentctl.train import runs
    from latentctl.train.classifier import print_validation_table

    options = RUN_OPTIONS[kind](**{field.name: getattr(arguments[field.name], "value", arguments[field.name])
                                   for field in fields(RUN_OPTIONS[kind])  # choices (Enum) as their strings
                                   if field.name in arguments})  # the options a command lacks keep their defaults
    runs.check_request(kind, options, resume=arguments["resume"], force=arguments["force"])
    if arguments.get("nproc", 1) > 1:  # start this very command again, in that many processes
        argv = context.find_root().meta.get("latentctl.argv", sys.argv[1:])
        raise typer.Exit(runs.relaunch(argv, arguments["nproc"]))
    given = {name for name in context.params if context.get_parameter_source(name).name != "DEFAULT"}

    with TrainingProgress() as progress:
        def on_event(event: str, info: dict[str, Any]) -> None:
            progress.update(event, info)
            if event == "end" and info["complete"] and kind == "classifier":
                print_validation_table(info["trainer"].metrics, info["trainer"].data.not_rendered)

        result = runs.start(kind, out=arguments["out"], data_root=arguments.get("data_root"), options=options,
                            resume=arguments["resume"], force=arguments["force"], device=arguments["device"],
                            given=given, on_event=on_event)
    if not result.main_process:  # rank 0 reports for all
        raise typer.Exit(0 if result.complete else runs.EXIT_INTERRUPTED)
    if arguments["json_output"]:
        console.emit_json({"command": f"train {kind}", **result.to_json()})
    if not result.complete:
        console.info(f"interrupted at epoch {result.epoch + 1}, step {result.step_in_epoch}: checkpoint saved in "
                     f"{result.model}")
        console.info(f"continue with: {result.resume_command}")
        raise typer.Exit(runs.EXIT_INTERRUPTED)
    console.info(f"done: {result.epoch} epochs in {result.training['seconds']:.0f}s; model in {result.model}")
    if not arguments["json_output"]:
        console.emit_path(result.model)

