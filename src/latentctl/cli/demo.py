"""``latentctl demo``: the whole digit workflow offline, on synthetic data, on a CPU, in a few minutes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli.options import Device, Json, Seed

# Sized for 2 CPU cores: about 2 minutes end to end, and recognisable digits of every class.
DEMO_TRAIN_IMAGES = 12_000
DEMO_TEST_IMAGES = 2_000
DEMO_EPOCHS = 10
DEMO_WIDTH = 32


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.",
                                      file_okay=False)] = Path("latentctl-demo"),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = DEMO_EPOCHS,
    device: Device = "auto",
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Run the digit workflow offline: synthetic digits, a small cGAN, samples, a walk, a score.

    Needs no dataset, no network and no GPU. Writes into --out: the synthetic dataset, the trained model,
    a grid with one row per digit, an interpolation GIF, a 1->7 morph, and prints a summary table.

    Examples:

        latentctl demo
        latentctl demo --out /tmp/demo --device cuda --json
    """
    import torch

    from latentctl import images as image_io
    from latentctl.cli.train import run_training
    from latentctl.data.synth_digits import synth_digits
    from latentctl.device import resolve_device
    from latentctl.evaluate import conditional_accuracy, fit_digit_classifier, to_unit_range, within_label_diversity
    from latentctl.latent.sampling import generate, interpolation_walks, noise_for_seeds
    from latentctl.store import load_model
    from latentctl.train.cgan import default_config, load_digits
    from latentctl.train.gan import GANTrainer, TrainOptions

    started = time.perf_counter()
    torch_device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    data_root, model_dir = out / "data" / "digits", out / "models" / "cgan"

    console.info(f"[1/4] drawing {DEMO_TRAIN_IMAGES:,} synthetic digits into {data_root}")
    synth_digits(data_root, n_train=DEMO_TRAIN_IMAGES, n_test=DEMO_TEST_IMAGES, seed=seed)
    dataset = load_digits(data_root)

    console.info(f"[2/4] training a small conditional DCGAN for {epochs} epoch{'s' * (epochs != 1)} on {torch_device}")
    options = TrainOptions(epochs=epochs, batch_size=64, seed=seed, sample_every=epochs)
    trainer = GANTrainer(default_config(gen_width=DEMO_WIDTH, disc_width=DEMO_WIDTH), options, dataset,
                         model_dir, torch_device)
    if not run_training(trainer):
        console.info(f"interrupted; resume with: latentctl train cgan --resume --out {model_dir} "
                     f"--data-root {data_root}")
        raise typer.Exit(130)

    console.info("[3/4] sampling and interpolating")
    generator, config = load_model(model_dir, "cgan", torch_device)
    labels = torch.arange(10).repeat_interleave(10)
    grid = generate(generator, noise_for_seeds(range(labels.shape[0]), config.latent_dim), labels)
    grid_path = image_io.save_image(image_io.to_pil(grid, nrow=10, scale=2), out / "samples.png")
    walk_path = image_io.save_walks(interpolation_walks(generator, config.latent_dim, seed, rows=6, frames=16,
                                                        mode="slerp", start_labels=[7] * 6),
                                    out / "interpolate-7.gif", scale=3)
    morph_path = image_io.save_walks(interpolation_walks(generator, config.latent_dim, seed, rows=4, frames=8,
                                                         mode="slerp", start_labels=[1] * 4, end_labels=[7] * 4),
                                     out / "morph-1-to-7.png", scale=2)

    console.info("[4/4] scoring with an independent digit classifier trained on the dataset's own images")
    judge = fit_digit_classifier(dataset.images, dataset.labels, epochs=3, seed=seed + 1, device=torch_device)
    test = load_digits(data_root, "test")
    score = conditional_accuracy(generator, judge, config.latent_dim, classes=10, per_label=100,
                                 judge_test=(test.images, test.labels))
    variety_labels = torch.arange(10).repeat_interleave(50)  # does each digit come in many styles?
    variety_images = generate(generator, noise_for_seeds(range(50_000, 50_500), config.latent_dim), variety_labels)
    variety = {"generated": round(within_label_diversity(variety_images, variety_labels), 4),
               "real": round(within_label_diversity(to_unit_range(test.images), test.labels), 4)}

    minutes = (time.perf_counter() - started) / 60
    files = {"samples": grid_path, "interpolation": walk_path, "morph": morph_path, "model": model_dir,
             "loss_curve": model_dir / "loss.png", "dataset": data_root}
    console.print_table("latentctl demo", ["what", "where"], [[k, v] for k, v in files.items()])
    console.info(f"generated digits recognised as the asked-for digit: {score.accuracy:.1%} "
                 f"(judge's accuracy on real test digits: {score.judge_accuracy:.1%}); variety within a digit "
                 f"{variety['generated']:.3f} (real digits: {variety['real']:.3f}); "
                 f"{minutes:.1f} minutes in all")
    if json_output:
        console.emit_json({"command": "demo", "files": {k: str(v) for k, v in files.items()},
                           "score": score.to_dict(), "variety": variety, "epochs": epochs, "device": str(torch_device),
                           "minutes": round(minutes, 2)})
    else:
        console.emit_path(grid_path)
