"""``latentctl demo``: the digit and face workflows offline, on synthetic data, on a CPU, in a few minutes."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from latentctl import console
from latentctl.cli.options import Device, Json, Seed

# Sized for 2 CPU cores: about 2 minutes end to end, and recognisable digits of every class.
DEMO_TRAIN_IMAGES = 12_000
DEMO_TEST_IMAGES = 2_000
DEMO_EPOCHS = 10
DEMO_WIDTH = 32
# Faces at 32x32: about 4 minutes on 2 cores for the classifier and the GAN together.
DEMO_FACES = 12_000
DEMO_FACE_SIZE = 32
DEMO_FACE_EPOCHS = 12
DEMO_FACE_WIDTH = 32
DEMO_CLASSIFIER_EPOCHS = 4


class Part(str, Enum):
    all = "all"
    digits = "digits"
    faces = "faces"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.",
                                      file_okay=False)] = Path("latentctl-demo"),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs of the digit cGAN.")] = DEMO_EPOCHS,
    face_epochs: Annotated[int, typer.Option("--face-epochs", min=1, help="Training epochs of the face "
                                             "GAN.")] = DEMO_FACE_EPOCHS,
    only: Annotated[Part, typer.Option("--only", help="Run one part: digits or faces.")] = Part.all,
    device: Device = "auto",
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Run the digit and face workflows offline: synthetic data, small models, samples, walks, scores.

    Needs no dataset, no network and no GPU. Digits: a conditional GAN, a grid with one row per digit, an
    interpolation GIF, a 1->7 morph, scored by an independent digit classifier. Faces: synthetic CelebA, an
    attribute classifier and a face GAN at 32x32, a grid and a walk, the attribute mix of the generated
    faces against the data's, and a strip of four faces steered towards Male. Writes everything into --out
    and prints a summary table.

    Examples:

        latentctl demo
        latentctl demo --only faces --out /tmp/demo --json
        latentctl demo --out /tmp/demo --device cuda --json
    """
    from latentctl.device import resolve_device

    started = time.perf_counter()
    torch_device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    report: dict[str, Any] = {"command": "demo", "device": str(torch_device)}
    if only in (Part.all, Part.digits):
        digit_files, digit_report = _digits(out, epochs, seed, torch_device)
        files.update(digit_files)
        report.update(digit_report)
    if only in (Part.all, Part.faces):
        face_files, face_report = _faces(out, face_epochs, seed, torch_device)
        files.update(face_files)
        report["faces"] = face_report
    minutes = (time.perf_counter() - started) / 60
    console.print_table("latentctl demo", ["what", "where"], [[k, v] for k, v in files.items()])
    if "score" in report:
        score, variety = report["score"], report["variety"]
        console.info(f"generated digits recognised as the asked-for digit: {score['accuracy']:.1%} "
                     f"(judge's accuracy on real test digits: {score['judge_accuracy']:.1%}); variety within a "
                     f"digit {variety['generated']:.3f} (real digits: {variety['real']:.3f})")
    if "faces" in report:
        faces = report["faces"]["score"]
        mix = ", ".join(f"{name} {faces['generated'][name]:.0%} (data {faces['real'][name]:.0%})"
                        for name in faces["key_attributes"])
        console.info(f"generated faces as the classifier reads them: {mix}; variety {faces['variety']['generated']:.3f}"
                     f" (real faces: {faces['variety']['real']:.3f}); classifier's balanced accuracy on the "
                     f"drawn attributes {report['faces']['classifier_balanced_accuracy']:.1%}")
    console.info(f"{minutes:.1f} minutes in all")
    if json_output:
        console.emit_json({**report, "files": {k: str(v) for k, v in files.items()}, "epochs": epochs,
                           "minutes": round(minutes, 2)})
    else:
        console.emit_path(files.get("samples") or files["face_samples"])


def _interrupted(command: str) -> None:
    console.info(f"interrupted; resume with: {command}")
    raise typer.Exit(130)


def _digits(out: Path, epochs: int, seed: int, torch_device: Any) -> tuple[dict[str, Path], dict[str, Any]]:
    """The digit part: synthetic digits, a conditional GAN, samples, walks, a score."""
    import torch

    from latentctl import images as image_io
    from latentctl.cli.train import run_training
    from latentctl.data.synth_digits import synth_digits
    from latentctl.eval.digits import conditional_accuracy, fit_digit_classifier, within_label_diversity
    from latentctl.images import to_unit_range
    from latentctl.latent.sampling import generate, interpolation_walks, noise_for_seeds
    from latentctl.store import load_model
    from latentctl.train.cgan import default_config, load_digits
    from latentctl.train.gan import GANTrainer, TrainOptions

    data_root, model_dir = out / "data" / "digits", out / "models" / "cgan"

    console.info(f"[1/4] drawing {DEMO_TRAIN_IMAGES:,} synthetic digits into {data_root}")
    synth_digits(data_root, n_train=DEMO_TRAIN_IMAGES, n_test=DEMO_TEST_IMAGES, seed=seed)
    dataset = load_digits(data_root)

    console.info(f"[2/4] training a small conditional DCGAN for {epochs} epoch{'s' * (epochs != 1)} on {torch_device}")
    options = TrainOptions(epochs=epochs, batch_size=64, seed=seed, sample_every=epochs)
    trainer = GANTrainer(default_config(gen_width=DEMO_WIDTH, disc_width=DEMO_WIDTH), options, dataset,
                         model_dir, torch_device)
    if not run_training(trainer):
        _interrupted(f"latentctl train cgan --resume --out {model_dir} --data-root {data_root}")

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

    files = {"samples": grid_path, "interpolation": walk_path, "morph": morph_path, "model": model_dir,
             "loss_curve": model_dir / "loss.png", "dataset": data_root}
    return files, {"score": score.to_dict(), "variety": variety}


def _faces(out: Path, epochs: int, seed: int, torch_device: Any) -> tuple[dict[str, Path], dict[str, Any]]:
    """The face part: synthetic CelebA, an attribute classifier, a face GAN, samples, a walk, a score."""
    import torch

    from latentctl import images as image_io
    from latentctl.cli.train import _ClassifierDisplay, run_training
    from latentctl.data.prepare import ensure_prepared
    from latentctl.data.synth_faces import synth_faces
    from latentctl.eval.faces import score_faces
    from latentctl.latent.sampling import generate, interpolation_walks, noise_for_seeds
    from latentctl.latent.steer import SteerSettings, Target, steer
    from latentctl.models.classifier import ClassifierConfig
    from latentctl.store import load_model
    from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer
    from latentctl.train.faces import default_config, default_options, faces_dataset
    from latentctl.train.gan import GANTrainer

    data_root = out / "data" / "faces"
    classifier_dir, gan_dir = out / "models" / "classifier", out / "models" / "gan"
    console.info(f"\\[faces 1/5] drawing {DEMO_FACES:,} synthetic faces into {data_root} and preparing them at "
                 f"{DEMO_FACE_SIZE}x{DEMO_FACE_SIZE}")
    synth_faces(data_root, DEMO_FACES, seed=seed, force=True)
    prepared = ensure_prepared(data_root, DEMO_FACE_SIZE)

    console.info(f"\\[faces 2/5] training the attribute classifier for {DEMO_CLASSIFIER_EPOCHS} epochs")
    classifier_trainer = ClassifierTrainer(ClassifierConfig(image_size=DEMO_FACE_SIZE),
                                           ClassifierOptions(epochs=DEMO_CLASSIFIER_EPOCHS, seed=seed),
                                           AttributeData.from_prepared(prepared), classifier_dir, torch_device)
    if not run_training(classifier_trainer, _ClassifierDisplay):
        _interrupted(f"latentctl train classifier --resume --out {classifier_dir} --data-root {data_root}")

    console.info(f"\\[faces 3/5] training a face GAN for {epochs} epoch{'s' * (epochs != 1)}")
    options = default_options(epochs=epochs, batch_size=64, seed=seed, sample_every=epochs)
    gan_trainer = GANTrainer(default_config(DEMO_FACE_SIZE, 100, DEMO_FACE_WIDTH, DEMO_FACE_WIDTH), options,
                             faces_dataset(prepared), gan_dir, torch_device, kind="gan")
    if not run_training(gan_trainer):
        _interrupted(f"latentctl train gan --resume --out {gan_dir} --data-root {data_root}")

    console.info("\\[faces 4/5] sampling and walking between faces")
    generator, config = load_model(gan_dir, "gan", torch_device)
    grid = generate(generator, noise_for_seeds(range(64), config.latent_dim))
    grid_path = image_io.save_image(image_io.to_pil(grid, nrow=8, scale=3), out / "faces.png")
    walk_path = image_io.save_walks(interpolation_walks(generator, config.latent_dim, seed, rows=4, frames=16,
                                                        mode="slerp"), out / "faces-walk.gif", scale=3)

    console.info("\\[faces 5/5] reading the generated faces with the classifier, and steering four towards Male")
    classifier, classifier_config = load_model(classifier_dir, "classifier", torch_device)
    male = Target(classifier_config.labels.index("Male"), "Male", +1)
    steered = steer(generator, classifier, noise_for_seeds(range(seed, seed + 4), config.latent_dim), [male],
                    SteerSettings(seed=seed))
    steer_path = image_io.save_walks(steered.images, out / "faces-steer-male.png", scale=3)
    images, attributes = prepared.select("val")
    rendered = [name for name in prepared.attribute_names if name not in prepared.not_rendered]
    score = score_faces(generator, config.latent_dim, classifier, prepared.attribute_names,
                        torch.from_numpy(images), torch.from_numpy(attributes), rendered)
    metrics = (classifier_trainer.metrics or {})["balanced_accuracy"]
    files = {"face_samples": grid_path, "face_walk": walk_path, "face_steer": steer_path, "face_gan": gan_dir,
             "face_classifier": classifier_dir, "face_dataset": data_root}
    return files, {"score": score.to_dict(), "epochs": epochs, "classifier_epochs": DEMO_CLASSIFIER_EPOCHS,
                   "classifier_balanced_accuracy": round(sum(metrics[name] for name in rendered) / len(rendered), 4),
                   "steer_male": [round(p, 4) for p in steered.probabilities[:, -1, male.index].tolist()]}
