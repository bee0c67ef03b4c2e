"""Inversion speed and closeness: ``latentctl invert``'s defaults against a plain baseline, in one run.

On the CLI's default face GAN (64x64, 100-d latent, widths 64) and attribute classifier (width 32), both
untrained but with their BatchNorm statistics set on noise so that faces change with the latent (speed does not
depend on the weights' values), it inverts faces the generator drew from known latents:

- **baseline**: the textbook inversion: one random start, Adam on the pixels' mean squared error, nothing else,
  as many steps as latentctl takes;
- **latentctl**: ``invert_images`` at ``InvertOptions``' defaults: the best of 256 random starts, the
  classifier's features and the latent prior;
- **encoder**: the same, started from a latent encoder's guess (``latentctl train encoder``) instead of the
  256 random starts. The encoder here is untrained (its speed does not depend on its weights), so its row's
  PSNR says nothing; docs/editing.md measures a trained one.

It prints seconds per face (wall clock, and the CPU time of the process: on a machine other jobs share, the
CPU time of one thread is what an idle core would take) and PSNR (dB, pixels in [0, 1]) for one face at a
time and for a batch, at each thread count asked for. PSNR here is of faces the generator can draw exactly;
real photos (docs/editing.md) come out lower.

With ``--photos``, it instead inverts those photos into a trained ``--model`` with each setting in turn
(one start or 256, the prior, the classifier's features, more steps; with ``--encoder``, its guess alone and
refined 50 and 150 steps) and prints PSNR, the share of the classifier's yes/no readings the reconstruction
shares with the photo, and CPU seconds per photo: the table of docs/editing.md.

    python benchmarks/invert.py                     # 1 and 2 threads, 1 face and a batch of 8
    python benchmarks/invert.py --threads 2 --batch 16 --json results.json
    python benchmarks/invert.py --photos faces/img_align_celeba --count 12 --model M --classifier C --encoder E
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from latentctl.latent.inversion import InvertOptions, invert_images  # noqa: E402
from latentctl.latent.sampling import noise_for_seeds  # noqa: E402
from latentctl.models.classifier import AttributeClassifier, ClassifierConfig  # noqa: E402
from latentctl.models.configs import EncoderConfig  # noqa: E402
from latentctl.models.dcgan import Generator  # noqa: E402
from latentctl.models.encoder import LatentEncoder  # noqa: E402
from latentctl.train.faces import default_config  # noqa: E402
from latentctl.train.options import ClassifierRunOptions  # noqa: E402


def lively(module: torch.nn.Module, inputs: torch.Tensor) -> torch.nn.Module:
    """``module`` with its BatchNorm running statistics set to those of ``inputs`` (in eval mode)."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = None
    with torch.no_grad():
        module.train()(inputs)
    return module.eval()


def psnr(images: torch.Tensor, targets: torch.Tensor) -> list[float]:
    mse = ((images - targets) / 2).square().flatten(1).mean(1)
    return [10 * math.log10(1 / max(value, 1e-10)) for value in mse.tolist()]


def run(name: str, generator, classifier, targets, options: InvertOptions, encoder=None) -> dict:
    # warm up: the first passes of a shape set up kernels, which the timing leaves out
    invert_images(generator, targets, replace(options, steps=1, starts=1), classifier, encoder=encoder)
    began, began_cpu = time.perf_counter(), time.process_time()
    inversion = invert_images(generator, targets, options, classifier, encoder=encoder)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
    scores = psnr(inversion.reconstructions, targets)
    return {"method": name, "faces": targets.shape[0], "seconds_per_face": seconds / targets.shape[0],
            "cpu_seconds_per_face": cpu_seconds / targets.shape[0], "psnr_mean": sum(scores) / len(scores),
            "psnr_min": min(scores)}


def settings_table(photos: list[Path], model: Path, classifier_dir: Path, encoder_dir: Path | None) -> None:
    """Print docs/editing.md's table: each setting's closeness on real photos, one thread."""
    from latentctl.eval.reading import predict_probabilities
    from latentctl.latent.inversion import photo_tensors
    from latentctl.store import load_model

    torch.set_num_threads(1)
    generator, config = load_model(model, "gan")
    classifier, _ = load_model(classifier_dir, "classifier")
    targets = photo_tensors(photos, config)
    read = predict_probabilities(classifier, targets) > 0.5
    defaults = InvertOptions()
    cases = {"plain: 1 random start, pixels only": replace(defaults, starts=1, feature_weight=0, prior_weight=0),
             "best of 256 starts, pixels only": replace(defaults, feature_weight=0, prior_weight=0),
             "+ the latent prior": replace(defaults, feature_weight=0),
             "+ the classifier's features (the defaults)": defaults,
             "the defaults, 300 steps": replace(defaults, steps=300)}
    encoder = None if encoder_dir is None else load_model(encoder_dir, "encoder")[0]
    if encoder is not None:
        cases |= {"encoder's guess alone": replace(defaults, steps=0),
                  "encoder + 50 steps": replace(defaults, steps=50),
                  "encoder + 150 steps (the defaults)": defaults}
    print("| setting | PSNR mean (dB) | PSNR min | mean abs error | attributes read alike | CPU s / photo |")
    for name, options in cases.items():
        began = time.process_time()
        inversion = invert_images(generator, targets, options, classifier if options.feature_weight else None,
                                  encoder=encoder if name.startswith("encoder") else None)
        cpu = (time.process_time() - began) / len(photos)
        scores = psnr(inversion.reconstructions, targets)
        error = ((inversion.reconstructions - targets) / 2).abs().mean().item()
        alike = ((predict_probabilities(classifier, inversion.reconstructions) > 0.5) == read).float().mean().item()
        print(f"| {name} | {sum(scores) / len(scores):.1f} | {min(scores):.1f} | {error:.3f} | {alike:.1%} | "
              f"{cpu:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="torch thread counts to time, comma-separated")
    parser.add_argument("--batch", type=int, default=8, help="faces inverted at once in the batched rows")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--photos", type=Path, help="a folder of photos: print the settings table instead")
    parser.add_argument("--count", type=int, default=12, help="photos of --photos, the first in name order")
    parser.add_argument("--model", type=Path, help="the face GAN of --photos")
    parser.add_argument("--classifier", type=Path, help="the attribute classifier of --photos")
    parser.add_argument("--encoder", type=Path, help="an encoder of --model, for --photos' encoder rows")
    arguments = parser.parse_args()
    if arguments.photos:
        photos = sorted(path for path in arguments.photos.iterdir() if path.suffix.lower() in (".jpg", ".png"))
        settings_table(photos[:arguments.count], arguments.model, arguments.classifier, arguments.encoder)
        return

    torch.manual_seed(0)
    config = default_config()
    generator = lively(Generator(config), torch.randn(256, config.latent_dim))
    classifier_config = ClassifierConfig(image_size=config.image_size, width=ClassifierRunOptions.width)
    with torch.no_grad():
        faces = generator(noise_for_seeds(range(10_000, 10_000 + max(arguments.batch, 1)), config.latent_dim))
    classifier = lively(AttributeClassifier(classifier_config), faces)
    encoder = lively(LatentEncoder(EncoderConfig(image_size=config.image_size, channels=config.channels,
                                                 latent_dim=config.latent_dim)), faces)
    defaults = InvertOptions()
    plain = replace(defaults, starts=1, feature_weight=0.0, prior_weight=0.0)
    rows = []
    for threads in (int(t) for t in arguments.threads.split(",")):
        torch.set_num_threads(threads)
        for count in (1, arguments.batch):
            targets = faces[:count]
            rows.append({"threads": threads, **run("baseline", generator, None, targets, plain)})
            rows.append({"threads": threads, **run("latentctl", generator, classifier, targets, defaults)})
            rows.append({"threads": threads, **run("encoder", generator, classifier, targets, defaults, encoder)})
    print(f"inversion of {config.image_size}x{config.image_size} faces the generator drew, {defaults.steps} Adam "
          f"steps ({platform.processor() or platform.machine()}, torch {torch.__version__})")
    print(f"{'threads':>7} {'faces':>5} {'method':<10} {'s/face':>7} {'CPU s/face':>10} {'PSNR dB':>8} {'min':>6}")
    for row in rows:
        print(f"{row['threads']:>7} {row['faces']:>5} {row['method']:<10} {row['seconds_per_face']:>7.2f} "
              f"{row['cpu_seconds_per_face']:>10.2f} {row['psnr_mean']:>8.1f} {row['psnr_min']:>6.1f}")
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
