"""Does a faster training step train as good a model? The demo's models, trained once per precision.

Digits: the conditional DCGAN of ``latentctl demo`` (synthetic digits, width 32, batch 64), trained with each
``--precision`` from the same seed and scored the demo's way: the share of generated digits an independent
classifier (trained on the dataset's own images) reads as the requested digit, and the variety within a digit
(mean L1 distance between two images of one digit; the real digits' for scale).

Faces: the demo's face part (synthetic faces at 32x32), per precision an attribute classifier (its mean
balanced accuracy over the drawn attributes on the validation split) and a face GAN, whose faces are read by
one reader for all precisions (the classifier trained with the first precision listed, so the GANs are
compared through the same eyes): the shares of Male, Smiling and Eyeglasses against the real faces', and the
variety (mean L1 between two faces).

Prints a markdown table per part with the training images/s beside the scores.

    python benchmarks/quality.py                                  # both parts, fp32 (the reference) and auto
    python benchmarks/quality.py --parts digits --device cuda --precisions fp32,bf16 --epochs 10
    python benchmarks/quality.py --parts faces --precisions auto --face-size 64 --face-width 32 --keep runs/q64
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from latentctl import demo
from latentctl.data.prepare import ensure_prepared
from latentctl.data.synth_digits import synth_digits
from latentctl.data.synth_faces import synth_faces
from latentctl.eval.digits import conditional_accuracy, fit_digit_classifier, within_label_diversity
from latentctl.eval.faces import KEY_ATTRIBUTES, score_faces
from latentctl.images import to_unit_range
from latentctl.latent.sampling import generate, noise_for_seeds
from latentctl.models.classifier import ClassifierConfig
from latentctl.train import FACE_LR, FACE_R1, cgan, faces
from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer
from latentctl.train.gan import GANTrainer, TrainOptions

DIGITS, TEST_DIGITS, DIGIT_WIDTH = demo.DEMO_TRAIN_IMAGES, demo.DEMO_TEST_IMAGES, demo.DEMO_WIDTH
FACES, FACE_SIZE, FACE_WIDTH = demo.DEMO_FACES, demo.DEMO_FACE_SIZE, demo.DEMO_FACE_WIDTH


def images_per_second(trainer: GANTrainer | ClassifierTrainer) -> str:
    """The training images/s of a finished run, for a table cell."""
    return f"{trainer.global_step * trainer.options.batch_size / trainer.seconds:,.0f}"


def digits(folder: Path, device: torch.device, precisions: list[str], epochs: int, seed: int) -> None:
    root = folder / "digits"
    synth_digits(root, n_train=DIGITS, n_test=TEST_DIGITS, seed=seed)
    train, test = cgan.load_digits(root), cgan.load_digits(root, "test")
    judge = fit_digit_classifier(train.images, train.labels, epochs=3, seed=seed + 1, device=device)
    real_variety = within_label_diversity(to_unit_range(test.images), test.labels)
    rows = []
    for precision in precisions:
        options = TrainOptions(epochs=epochs, batch_size=64, seed=seed, sample_every=epochs, precision=precision)
        trainer = GANTrainer(cgan.default_config(gen_width=DIGIT_WIDTH, disc_width=DIGIT_WIDTH), options, train,
                             folder / f"cgan-{precision}", device)
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
                    f"{images_per_second(trainer)} | {seconds:.0f} s |")
        print(f"# {rows[-1]}", flush=True)
    print(f"\ndigits recognised by the judge (its accuracy on real test digits: {score.judge_accuracy:.1%}); "
          f"variety of real digits {real_variety:.3f}; {epochs} epochs of {DIGITS:,} on {device}\n")
    print("| --precision | recognised | variety | final loss D / G | training images/s | wall time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows), flush=True)


def face_part(folder: Path, device: torch.device, precisions: list[str], epochs: int, seed: int,
              faces_count: int = FACES, size: int = FACE_SIZE, width: int = FACE_WIDTH,
              classifier_epochs: int = demo.DEMO_CLASSIFIER_EPOCHS, r1: float = FACE_R1) -> None:
    root = folder / "faces"
    synth_faces(root, faces_count, seed=seed, force=True)
    prepared = ensure_prepared(root, size)
    rendered = [name for name in prepared.attribute_names if name not in prepared.not_rendered]
    val_images, val_attributes = (torch.from_numpy(array) for array in prepared.select("val"))
    reader, rows = None, []
    for precision in precisions:
        classifier_trainer = ClassifierTrainer(
            ClassifierConfig(image_size=size),
            ClassifierOptions(epochs=classifier_epochs, seed=seed, precision=precision),
            AttributeData.from_prepared(prepared), folder / f"classifier-{precision}", device)
        classifier_trainer.train()
        balanced = classifier_trainer.metrics["balanced_accuracy"]
        classifier_accuracy = sum(balanced[name] for name in rendered) / len(rendered)
        reader = classifier_trainer.model.eval() if reader is None else reader
        options = faces.default_options(epochs=epochs, batch_size=64, r1=r1, seed=seed, sample_every=epochs,
                                        precision=precision)
        trainer = GANTrainer(faces.default_config(size, 100, width, width), options,
                             faces.faces_dataset(prepared), folder / f"gan-{precision}", device, kind="gan")
        trainer.train()
        score = score_faces(trainer.ema, trainer.config.latent_dim, reader, prepared.attribute_names, val_images,
                            val_attributes, rendered)
        shares = " | ".join(f"{score.generated[name]:.1%} ({score.real[name]:.1%})" for name in KEY_ATTRIBUTES)
        rows.append(f"| {precision} ({trainer.step_settings.precision}) | {classifier_accuracy:.1%} | "
                    f"{images_per_second(classifier_trainer)} | {shares} | "
                    f"{score.variety_generated:.3f} ({score.variety_real:.3f}) | "
                    f"{images_per_second(trainer)} |")
        print(f"# {rows[-1]}", flush=True)
    print(f"\n{faces_count:,} synthetic faces at {size}x{size}: classifiers {classifier_epochs} epochs, GANs of "
          f"width {width} {epochs} epochs (Adam lr {FACE_LR:g}, R1 {r1:g}), on {device}; shares of 1,000 generated "
          f"faces (of the real validation faces) as the {precisions[0]} classifier reads them\n")
    print("| --precision | classifier balanced accuracy | classifier images/s | "
          + " | ".join(KEY_ATTRIBUTES) + " | variety (real) | GAN images/s |")
    print("| --- | ---: | ---: | " + "---: | " * len(KEY_ATTRIBUTES) + "---: | ---: |")
    print("\n".join(rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--parts", default="digits,faces", help="comma-separated, from digits, faces")
    parser.add_argument("--precisions", default="fp32,auto", help="comma-separated, from auto, fp32, bf16")
    parser.add_argument("--epochs", type=int, default=demo.DEMO_EPOCHS,
                        help=f"of the cGAN; the demo trains {demo.DEMO_EPOCHS}")
    parser.add_argument("--face-epochs", type=int, default=demo.DEMO_FACE_EPOCHS,
                        help=f"of the face GAN; the demo trains {demo.DEMO_FACE_EPOCHS}")
    parser.add_argument("--faces", type=int, default=FACES, help=f"synthetic faces drawn; the demo's {FACES:,}")
    parser.add_argument("--face-size", type=int, default=FACE_SIZE, help=f"the demo's {FACE_SIZE}; train gan's 64")
    parser.add_argument("--face-width", type=int, default=FACE_WIDTH,
                        help=f"of the face GAN's networks; the demo's {FACE_WIDTH}, train gan's 64")
    parser.add_argument("--classifier-epochs", type=int, default=demo.DEMO_CLASSIFIER_EPOCHS,
                        help=f"the demo trains {demo.DEMO_CLASSIFIER_EPOCHS}; train classifier 5")
    parser.add_argument("--r1", type=float, default=FACE_R1, help="the face GAN's R1 weight (train gan --r1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the data and the models here and keep them (e.g. for "
                        "`latentctl eval steer --model DIR/gan-auto --classifier DIR/classifier-auto`)")
    args = parser.parse_args()
    device, precisions = torch.device(args.device), args.precisions.split(",")
    with tempfile.TemporaryDirectory(prefix="latentctl-quality-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if "digits" in args.parts.split(","):
            digits(folder, device, precisions, args.epochs, args.seed)
        if "faces" in args.parts.split(","):
            face_part(folder, device, precisions, args.face_epochs, args.seed, args.faces, args.face_size,
                      args.face_width, args.classifier_epochs, args.r1)


if __name__ == "__main__":
    main()
