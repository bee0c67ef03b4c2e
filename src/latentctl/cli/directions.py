"""``latentctl directions discover``: directions in a generator's latent space found without labels."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from latentctl.cli import options as flags
from latentctl.cli.render import emit
from latentctl.latent import DISCOVERY_METHODS
from latentctl.latent.discover import DiscoverOptions, discover_directions

app = typer.Typer(help="Directions in a generator's latent space found without labels.", no_args_is_help=True)
Method = Enum("Method", [(method, method) for method in DISCOVERY_METHODS], type=str)


@app.command("discover")
def discover(
    out: Annotated[Path, typer.Argument(help="Output .png: a row per direction, a face from -3 to +3 sd along it.")]
    = Path("directions.png"),
    model: Annotated[Path | None, typer.Option("--model", help="GAN folder (faces or digits), registered name or "
                                               "user/repo[@rev] [default: gan-celeba].")] = None,
    method: Annotated[Method, typer.Option("--method", help="sefa: closed form from the first layer's weights "
                                           "(seconds); ganspace: PCA of its activations over --samples noise "
                                           "vectors.")] = Method(DiscoverOptions.method),
    k: Annotated[int, typer.Option("--k", min=1, max=1024, help="Directions to find.")] = DiscoverOptions.k,
    classifier: Annotated[Path | None, typer.Option("--classifier", help="Name each direction by the attributes "
                                                    "this classifier reads changing most along it.")] = None,
    samples: Annotated[int, typer.Option("--samples", min=100, max=1_000_000, help="Noise vectors (ganspace).")
                       ] = DiscoverOptions.samples,
    device: flags.Device = "auto",
    seed: flags.Seed = DiscoverOptions.seed,
    json_output: flags.Json = False,
) -> None:
    """Find the main directions of a GAN's latent space without labels, draw them, keep them for steer.

    SeFa (Shen & Zhou 2021) or GANSpace (Härkönen et al. 2020); 'latentctl steer --direction N' walks one.

    Examples:

        latentctl directions discover --model gan-celeba --classifier classifier-celeba faces.png
        latentctl directions discover --model cgan-mnist --method ganspace --k 8 --json digits.png
        latentctl steer --model cgan-mnist --direction ganspace:2 slant.png
    """
    options = DiscoverOptions(method=method.value, k=k, samples=samples, seed=seed)
    emit("directions discover", discover_directions(model, options, classifier=classifier, out=out, device=device),
         json_output, out)
