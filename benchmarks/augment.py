"""What DiffAugment (``train gan --augment``) changes on a small set: synthetic faces, trained with and without.

Draws N synthetic faces (2,000 by default) and prepares them, trains one attribute classifier on them as the
reader, then the face GAN twice from the same seed, for the same epochs, without and with augmentation. For each
it prints: the discriminator's mean probability "real" on the training faces and on held-out (validation) faces
it never saw (a gap between the two is the discriminator memorising the training set, which DiffAugment is meant
to stop), its final D(x) / D(G(z)), and the generated faces as the reader sees them: the shares of Male, Smiling
and Eyeglasses against the real faces', the variety (mean L1 between two faces; the real faces' for scale), and
an FID and KID between 2,000 generated faces and the real ones on the reader's own features (its last feature map,
averaged over positions): the FID-like score that needs no Inception download.

    python benchmarks/augment.py                          # 2,000 faces, 32x32, width 32, 40 epochs, on the CPU
    python benchmarks/augment.py --device cuda --size 64 --width 64 --epochs 100
    python benchmarks/augment.py --variants off,0.5,0.25,0   # without, then with cutouts of 1/2, 1/4 and none
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from latentctl.data.prepare import ensure_prepared
from latentctl.data.synth_faces import synth_faces
from latentctl.eval.faces import KEY_ATTRIBUTES, score_faces
from latentctl.eval.fid import frechet_distance, kernel_distance
from latentctl.images import to_unit_range
from latentctl.latent.sampling import generate, noise_for_seeds
from latentctl.models.classifier import ClassifierConfig
from latentctl.models.dcgan import split_logits
from latentctl.train import augment as augmentation
from latentctl.train import faces
from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer
from latentctl.train.gan import GANTrainer


@torch.no_grad()
def reader_features(reader: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The reader classifier's last feature map, averaged over positions, of images (N, 3, S, S) in [-1, 1]."""
    device = next(reader.parameters()).device
    return torch.cat([reader.features(images[start:start + 256].to(device)).float().mean((2, 3)).cpu()
                      for start in range(0, images.shape[0], 256)])


@torch.no_grad()
def real_probability(trainer: GANTrainer, images: torch.Tensor) -> float:
    """The discriminator's mean probability "real" on uint8 ``images`` (N, 3, S, S), read in eval mode."""
    discriminator = trainer.discriminator.eval()
    logits = torch.cat([split_logits(discriminator(to_unit_range(images[start:start + 256].to(trainer.device))))[0]
                        for start in range(0, images.shape[0], 256)])
    discriminator.train()
    return torch.sigmoid(logits.float()).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--classifier-epochs", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, help="synthetic faces already drawn (else drawn in a scratch folder)")
    parser.add_argument("--variants", default="off,0.5",
                        help="comma-separated runs: 'off' (no augmentation), or the cutout's side as a fraction of the "
                        "image's for a run with augmentation (0.5 is DiffAugment's and the default; 0 cuts nothing)")
    parser.add_argument("--keep", type=Path, help="write the models (and their last sample grids) here instead of "
                        "a scratch folder that goes")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="latentctl-augment-") as scratch:
        folder = args.keep or Path(scratch)
        root = args.root or folder / "faces"
        if args.root is None:
            synth_faces(root, args.faces, seed=args.seed)
        prepared = ensure_prepared(root, args.size)
        rendered = [name for name in prepared.attribute_names if name not in prepared.not_rendered]
        train_images, _ = (torch.from_numpy(array) for array in prepared.select("train"))
        val_images, val_attributes = (torch.from_numpy(array) for array in prepared.select("val"))
        reader = ClassifierTrainer(ClassifierConfig(image_size=args.size),
                                   ClassifierOptions(epochs=args.classifier_epochs, seed=args.seed),
                                   AttributeData.from_prepared(prepared), folder / "classifier", device)
        reader.train()
        reader_model = reader.model.eval()
        real_features = reader_features(reader_model, to_unit_range(torch.cat([train_images, val_images])))
        rows = []
        for variant in args.variants.split(","):
            augment = variant != "off"
            if augment:
                augmentation.CUTOUT = float(variant)
            label = f"--augment, cutout {float(variant):g}" if augment else "--no-augment"
            options = faces.default_options(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                            sample_every=args.epochs, augment=augment)
            trainer = GANTrainer(faces.default_config(args.size, 100, args.width, args.width), options,
                                 faces.faces_dataset(prepared), folder / f"gan-{variant}", device, kind="gan")
            started = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - started
            on_train, on_val = real_probability(trainer, train_images), real_probability(trainer, val_images)
            score = score_faces(trainer.ema, trainer.config.latent_dim, reader.model.eval(), prepared.attribute_names,
                                val_images, val_attributes, rendered)
            fake = generate(trainer.ema, noise_for_seeds(range(len(real_features)), trainer.config.latent_dim))
            fake_features = reader_features(reader_model, fake)
            fid = frechet_distance(fake_features, real_features)
            kid, _ = kernel_distance(fake_features, real_features, subsets=50, subset_size=1000)
            last = trainer.epochs[-1]
            shares = " | ".join(f"{score.generated[name]:.1%} ({score.real[name]:.1%})" for name in KEY_ATTRIBUTES)
            rows.append(f"| {label} | {on_train:.2f} | {on_val:.2f} | "
                        f"{on_train - on_val:+.2f} | {last['d_real']:.2f} / {last['d_fake']:.2f} | {shares} | "
                        f"{score.variety_generated:.3f} ({score.variety_real:.3f}) | {fid:.2f} | {kid:.4f} | "
                        f"{seconds:.0f} s |")
            print(f"# {rows[-1]}", flush=True)
    print(f"\n{args.faces:,} synthetic faces ({train_images.shape[0]:,} training, {val_images.shape[0]:,} held out) at "
          f"{args.size}x{args.size}, GAN width {args.width}, batch {args.batch_size}, {args.epochs} epochs, seed "
          f"{args.seed}, on {device}\n")
    print("| | D real: training faces | D real: held-out faces | gap | last epoch D(x) / D(G(z)) | "
          + " | ".join(KEY_ATTRIBUTES) + " | variety (real) | FID (reader) | KID (reader) | time |")
    print("| --- | ---: | ---: | ---: | ---: | " + "---: | " * len(KEY_ATTRIBUTES) + "---: | ---: | ---: | ---: |")
    print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
