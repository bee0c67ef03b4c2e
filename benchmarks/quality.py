"""Does a faster training step train as good a model? The demo's digit cGAN, trained once per precision.

Trains the conditional DCGAN of ``latentctl demo`` (synthetic digits, width 32, batch 64) with each
``--precision`` from the same seed, then scores every generator the demo's way: the share of generated
digits an independent classifier (trained on the dataset's own images) reads as the requested digit, and
the variety within a digit (mean L1 distance between two images of one digit; the real digits' for scale).
Prints a markdown table with the training images/s beside the scores.

    python benchmarks/quality.py                                  # fp32 (the reference) and auto, CPU or GPU
    python benchmarks/quality.py --device cuda --precisions fp32,bf16 --epochs 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from latentctl.data.synth_digits import synth_digits
from latentctl.evaluate import conditional_accuracy, fit_digit_classifier, to_unit_range, within_label_diversity
from latentctl.latent.sampling import generate, noise_for_seeds
from latentctl.train.cgan import default_config, load_digits
from latentctl.train.gan import GANTrainer, TrainOptions

WIDTH, TRAIN_IMAGES, TEST_IMAGES = 32, 12_000, 2_000  # latentctl demo's digit part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default="fp32,auto", help="comma-separated, from auto, fp32, bf16")
    parser.add_argument("--epochs", type=int, default=10, help="the demo trains 10")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="latentctl-quality-") as folder:
        root = Path(folder) / "digits"
        synth_digits(root, n_train=TRAIN_IMAGES, n_test=TEST_IMAGES, seed=args.seed)
        train, test = load_digits(root), load_digits(root, "test")
        judge = fit_digit_classifier(train.images, train.labels, epochs=3, seed=args.seed + 1, device=device)
        real_variety = within_label_diversity(to_unit_range(test.images), test.labels)
        rows = []
        for precision in args.precisions.split(","):
            options = TrainOptions(epochs=args.epochs, batch_size=64, seed=args.seed, sample_every=args.epochs,
                                   precision=precision)
            trainer = GANTrainer(default_config(gen_width=WIDTH, disc_width=WIDTH), options, train,
                                 Path(folder) / precision, device)
            started = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - started
            generator = trainer.ema
            score = conditional_accuracy(generator, judge, trainer.config.latent_dim, classes=10, per_label=100,
                                         judge_test=(test.images, test.labels))
            labels = torch.arange(10).repeat_interleave(50)
            variety = within_label_diversity(generate(generator, noise_for_seeds(range(50_000, 50_500), 100), labels),
                                             labels)
            last = trainer.epochs[-1]
            rows.append(f"| {precision} ({trainer.step_settings.precision}) | {score.accuracy:.1%} | {variety:.3f} | "
                        f"{last['loss_d']:.3f} / {last['loss_g']:.3f} | "
                        f"{trainer.global_step * 64 / trainer.seconds:,.0f} | {seconds:.0f} s |")
            print(f"# {rows[-1]}", flush=True)
    print(f"digits recognised by the judge (its accuracy on real test digits: {score.judge_accuracy:.1%}); "
          f"variety of real digits {real_variety:.3f}; {args.epochs} epochs of {TRAIN_IMAGES:,} on {device}\n")
    print("| --precision | recognised | variety | final loss D / G | training images/s | wall time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
