"""``latentctl demo`` as one call, ``run``: the digit and face workflows offline, on synthetic data, in minutes.

Needs no dataset, no network and no GPU. It strings the library's own calls together (synthetic data, the
trainers through ``train.runs.train``, sampling, walks, steering, scores), so it doubles as an example of
them. Its imports are inside the functions: the CLI reads the constants below while building ``--help``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from latentctl import console
from latentctl.errors import UsageError

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
Part = Literal["all", "digits", "faces"]
PARTS = get_args(Part)
DEMO_OUT = Path("latentctl-demo")  # in the working folder

OnEvent = Callable[[str, dict[str, Any]], None] | None  # a training's events, see latentctl.train.runs


@dataclass
class DemoResult:
    """What the demo made (``files``: what, where) and how its models score."""

    device: str
    epochs: int  # of the digit cGAN
    files: dict[str, Path] = field(default_factory=dict)
    digits: dict[str, Any] | None = None  # {"score": ..., "variety": ...}
    faces: dict[str, Any] | None = None  # {"score": ..., "epochs": ..., "classifier_balanced_accuracy": ...}
    minutes: float = 0.0
    resume_command: str | None = None  # set when Ctrl-C stopped a training: the command that continues it

    @property
    def complete(self) -> bool:
        return self.resume_command is None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document of ``latentctl demo`` (less its "command")."""
        return {"device": self.device, **(self.digits or {}), **({"faces": self.faces} if self.faces else {}),
                "files": {name: str(path) for name, path in self.files.items()}, "epochs": self.epochs,
                "minutes": round(self.minutes, 2)}

    def summary(self) -> str:
        """Lines for a person: how the digits and faces scored, and the time it took."""
        lines = []
        if self.digits:
            score, variety = self.digits["score"], self.digits["variety"]
            lines.append(f"generated digits recognised as the asked-for digit: {score['accuracy']:.1%} (judge's "
                         f"accuracy on real test digits: {score['judge_accuracy']:.1%}); variety within a digit "
                         f"{variety['generated']:.3f} (real digits: {variety['real']:.3f})")
        if self.faces:
            faces = self.faces["score"]
            mix = ", ".join(f"{name} {faces['generated'][name]:.0%} (data {faces['real'][name]:.0%})"
                            for name in faces["key_attributes"])
            lines.append(f"generated faces as the classifier reads them: {mix}; variety "
                         f"{faces['variety']['generated']:.3f} (real faces: {faces['variety']['real']:.3f}); "
                         f"classifier's balanced accuracy on the drawn attributes "
                         f"{self.faces['classifier_balanced_accuracy']:.1%}")
        return "\n".join([*lines, f"{self.minutes:.1f} minutes in all"])


def run(out: Path = DEMO_OUT, *, epochs: int = DEMO_EPOCHS, face_epochs: int = DEMO_FACE_EPOCHS, only: Part = "all",
        device: str = "auto", seed: int = 0, on_event: OnEvent = None) -> DemoResult:
    """Run the demo's parts (``only``: "all", "digits" or "faces") into ``out``; training progress goes to
    ``on_event`` (see ``latentctl.train.runs``). A Ctrl-C during a training stops there, with it saved."""
    from latentctl.device import resolve_device

    if only not in PARTS:
        raise UsageError(f"unknown part {only!r}: use one of {', '.join(PARTS)}", option="--only")
    started = time.perf_counter()
    torch_device = resolve_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(str(torch_device), epochs)
    try:
        if only in ("all", "digits"):
            result.digits = _digits(out, epochs, seed, torch_device, result.files, on_event)
        if only in ("all", "faces"):
            result.faces = _faces(out, face_epochs, seed, torch_device, result.files, on_event)
    except _Stopped as stopped:
        result.resume_command = stopped.command
        console.info(f"interrupted; resume with: {stopped.command}")
    result.minutes = (time.perf_counter() - started) / 60
    return result


class _Stopped(Exception):
    """Ctrl-C stopped a training; ``command`` continues it."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        self.command = command


def _train(trainer: Any, on_event: OnEvent, command: str) -> None:
    from latentctl.train.runs import train

    if not train(trainer, on_event):
        raise _Stopped(command)


def _digits(out: Path, epochs: int, seed: int, torch_device: Any, files: dict[str, Path],
            on_event: OnEvent) -> dict[str, Any]:
    """The digit part: synthetic digits, a conditional GAN, samples, walks, a score."""
    import torch

    from latentctl import images as image_io
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
    _train(trainer, on_event, f"latentctl train cgan --resume --out {model_dir} --data-root {data_root}")

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

    files.update({"samples": grid_path, "interpolation": walk_path, "morph": morph_path, "model": model_dir,
                  "loss_curve": model_dir / "loss.png", "dataset": data_root})
    return {"score": score.to_dict(), "variety": variety}


def _faces(out: Path, epochs: int, seed: int, torch_device: Any, files: dict[str, Path],
           on_event: OnEvent) -> dict[str, Any]:
    """The face part: synthetic CelebA, an attribute classifier, a face GAN, samples, a walk, a score."""
    import torch

    from latentctl import images as image_io
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
    _train(classifier_trainer, on_event,
           f"latentctl train classifier --resume --out {classifier_dir} --data-root {data_root}")

    console.info(f"\\[faces 3/5] training a face GAN for {epochs} epoch{'s' * (epochs != 1)}")
    options = default_options(epochs=epochs, batch_size=64, seed=seed, sample_every=epochs)
    gan_trainer = GANTrainer(default_config(DEMO_FACE_SIZE, 100, DEMO_FACE_WIDTH, DEMO_FACE_WIDTH), options,
                             faces_dataset(prepared), gan_dir, torch_device, kind="gan")
    _train(gan_trainer, on_event, f"latentctl train gan --resume --out {gan_dir} --data-root {data_root}")

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
    files.update({"face_samples": grid_path, "face_walk": walk_path, "face_steer": steer_path, "face_gan": gan_dir,
                  "face_classifier": classifier_dir, "face_dataset": data_root})
    return {"score": score.to_dict(), "epochs": epochs, "classifier_epochs": DEMO_CLASSIFIER_EPOCHS,
            "classifier_balanced_accuracy": round(sum(metrics[name] for name in rendered) / len(rendered), 4),
            "steer_male": [round(p, 4) for p in steered.probabilities[:, -1, male.index].tolist()]}
