"""Options shared by several commands, declared once so every command spells them the same way."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from latentctl.latent import DEFAULT_FIT, DIRECTION_FITS


def _check_device(value: str) -> str:
    from latentctl.device import DEVICE_PATTERN

    if not DEVICE_PATTERN.match(value.strip().lower()):
        raise typer.BadParameter(f"{value!r} is not a device: use auto, cpu, cuda, cuda:N or mps")
    return value


def celeba_names(param: typer.CallbackParam, values: list[str] | None) -> list[str] | None:
    """A callback of attribute options: a misspelt CelebA name is refused at parse time, before any model is looked
    up (with a "did you mean"); a name unlike all of CelebA's is left for the classifier's own labels to judge
    (those of a folder imported with --labels)."""
    from latentctl.errors import UsageError
    from latentctl.latent.attributes import check_celeba_spelling

    try:
        check_celeba_spelling(values or [], param.opts[0])
    except UsageError as error:
        raise typer.BadParameter(error.message, param_hint=error.option) from None
    return values


Device = Annotated[str, typer.Option("--device", callback=_check_device, help="auto, cpu, cuda, cuda:N or mps "
                                     "(auto picks CUDA when present).", rich_help_panel="Runtime")]
Seed = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, rich_help_panel="Runtime",
                                   help="Seed for every random choice; same seed, same result.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document describing the result on stdout.",
                                    rich_help_panel="Output")]
DataRoot = Annotated[Path | None, typer.Option("--root", "--data-root",
                                               help="Dataset folder [default: $LATENTCTL_HOME/data/ followed by "
                                               "the dataset name].",
                                               file_okay=False)]

# steering, shared by `steer` and `eval steer`
FaceModel = Annotated[Path | None, typer.Option("--model", help="Face GAN folder, a name from 'latentctl models "
                                                "list', or a Hub repo user/repo[@rev] [default: gan-celeba].")]
Classifier = Annotated[Path | None, typer.Option("--classifier", help="Attribute classifier: folder, registered "
                                                 "name or user/repo[@rev] [default: classifier-celeba].")]
Steps = Annotated[int, typer.Option("--steps", min=1, max=1000, rich_help_panel="Steering",
                                    help="Moves from the first frame to the last.")]
Strength = Annotated[float, typer.Option("--strength", min=0.01, max=100.0, rich_help_panel="Steering",
                                         help="Distance travelled in latent space over all steps (a latent has norm "
                                         "~sqrt(latent size)).")]
KeepOthers = Annotated[float, typer.Option("--keep-others", min=0.0, rich_help_panel="Steering", help="Weight of "
                                           "keeping every other attribute where it was (disentanglement); 0 turns it "
                                           "off. With --method direction, any value > 0 projects their directions "
                                           "out; on a model trained with --condition attributes it also holds their "
                                           "inputs, which with 0 follow the targets as the data correlates them.")]
Views = Annotated[int, typer.Option("--views", min=1, max=16, rich_help_panel="Steering", help="Faces the gradient "
                                    "method reads per face and step: the face and views-1 drawn from nearby latents, "
                                    "whose average it follows (harder to fool; each view costs a generator pass). "
                                    "1: the face alone, fastest.")]


def _check_until(value: float | None) -> float | None:
    if value is not None and not 0.5 < value < 1:
        raise typer.BadParameter("must be a probability above 0.5 and below 1, such as 0.9")
    return value


Until = Annotated[float | None, typer.Option("--until", callback=_check_until, rich_help_panel="Steering",
                                             help="Stop a face once every target's probability is past P (below "
                                             "1-P for --away-from).")]
Reach = Annotated[float, typer.Option("--reach", min=1.0, max=4.0, rich_help_panel="Steering", help="A model trained "
                                      "with --condition attributes: how far the targets' inputs turn (label and "
                                      "gradient), 1 being the other value; up to 4 pushes them past what training "
                                      "showed, for attributes the generator draws faintly (with --until, each face "
                                      "stops when it is read).")]
Samples = Annotated[int, typer.Option("--samples", min=100, max=1_000_000, rich_help_panel="Steering", help="Faces "
                                      "sampled to fit the attribute directions (--method direction; fitted once per "
                                      "generator, classifier and --fit, then cached).")]
FitName = Enum("FitName", [(fit, fit) for fit in DIRECTION_FITS], type=str)
_FIT_HELP = ("How the direction method fits its boundaries: class-means (all faces) or interfacegan (a linear SVM on "
             "the faces read most surely each way).")
Fit = Annotated[FitName, typer.Option("--fit", rich_help_panel="Steering", help=_FIT_HELP)]
Fits = Annotated[list[FitName] | None, typer.Option("--fit", rich_help_panel="Steering", show_default=False,
                                                    help=_FIT_HELP + " Repeatable: each is scored [default: "
                                                    f"{DEFAULT_FIT}].")]
InceptionWeights = Annotated[Path | None, typer.Option("--inception-weights", dir_okay=False, show_default=False, help=(
    "The FID Inception's weights file, for machines without internet [default: fetched into torch.hub's cache on "
    "first use]."))]


# the strip of frames, shared by `steer` and `edit`
To = Annotated[list[str] | None, typer.Option("--to", help="Attribute to add (repeatable), e.g. Male, smiling, "
                                             "eyeglasses.", show_default=False, callback=celeba_names)]
AwayFrom = Annotated[list[str] | None, typer.Option("--away-from", help="Attribute to remove (repeatable).",
                                                    show_default=False, callback=celeba_names)]
Frames = Annotated[int, typer.Option("--frames", min=2, max=256, help="Snapshots per face (columns), the first "
                                     "being the unchanged face.")]


class Method(str, Enum):
    gradient = "gradient"
    direction = "direction"
    label = "label"


SteerMethod = Annotated[Method, typer.Option("--method", rich_help_panel="Steering", help="gradient: follow the "
                                             "classifier's gradient; direction: move along a fitted linear direction "
                                             "(instant once fitted); label: turn the attribute input of a model "
                                             "trained with --condition attributes, the noise fixed.")]
FrameMs = Annotated[int, typer.Option("--frame-ms", min=10, max=5000, help="GIF frame time.")]
Scale = Annotated[int | None, typer.Option("--scale", min=1, max=16, help="Nearest-neighbour upscaling "
                                           "[default: 2 under 64 px, else 1].")]
