"""The pictures behind docs/steering.md's "A better fitted direction": per attribute, the first six faces that
``eval steer`` scores (those the judge reads as not having it) and their last frame along each fixed direction:
the class-means and interfacegan boundaries' normals and the SeFa component that changes the attribute most, each
conditioned (keep-others on) and plain, with ``steer``'s default walk (40 steps, strength 8).

    python benchmarks/direction_grids.py GAN CLASSIFIER JUDGE OUT_DIR [--samples 16000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from latentctl import images as image_io
from latentctl.eval.steering import COMPONENTS, starting_faces
from latentctl.latent import components
from latentctl.latent.discover import NAMING_FACES, SPAN
from latentctl.latent.session import SteeringSession
from latentctl.latent.steer import SteerSettings, Target, steer
from latentctl.store import load_model

FACES = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gan")
    parser.add_argument("classifier")
    parser.add_argument("judge")
    parser.add_argument("out", type=Path)
    parser.add_argument("--samples", type=int, default=16_000)
    parser.add_argument("--attribute", action="append", default=None)
    args = parser.parse_args()
    session = SteeringSession.load(args.gan, args.classifier, "cpu")
    judge, judge_config = load_model(Path(args.judge), "classifier", session.device)
    fits = {fit: session.directions(args.samples, fit) for fit in ("class-means", "interfacegan")}
    found = components.find_directions(session.generator, session.config, "sefa",
                                       min(COMPONENTS, session.config.latent_dim))
    found = components.name_directions(found, session.generator, session.config, session.classifier, session.names,
                                       list(range(NAMING_FACES)), SPAN)
    args.out.mkdir(parents=True, exist_ok=True)
    for attribute in args.attribute or ["Male", "Smiling", "Eyeglasses"]:
        column = session.names.index(attribute)
        noise, _ = starting_faces(session.generator, judge, judge_config.labels.index(attribute),
                                  session.config.latent_dim, FACES, 0)
        index, sign = found.strongest(column)
        runs = []
        for keep in (True, False):
            suffix = " keep" if keep else ""
            runs += [(f"CM{suffix}", fits["class-means"].move([(column, 1)], keep)),
                     (f"IFG{suffix}", fits["interfacegan"].move([(column, 1)], keep)),
                     (f"sefa:{index}{suffix}", fits["class-means"].condition(sign * found.directions[index], [column],
                                                                             keep))]
        frames = []
        for _, move in runs:
            result = steer(session.generator, session.classifier, noise, [Target(column, attribute, 1)],
                           SteerSettings(method="direction", frames=2), move)
            frames = frames or [result.images[:, 0]]
            frames.append(result.images[:, -1])
        heads = ["start"] + [head for head, _ in runs]
        picture = image_io.to_pil(torch.stack(frames, dim=1).flatten(0, 1), nrow=len(heads), scale=3)
        path = args.out / f"refit-{attribute.lower()}.png"
        image_io.save_image(image_io.caption_grid(picture, [[]] * noise.shape[0], heads), path)
        print(f"{attribute}: sefa component {index} (sign {sign:+d}), {path}")


if __name__ == "__main__":
    main()
