"""What tests/test_distributed.py runs under torchrun, with the hooks a test needs and production code lacks.

    python -m torchrun_worker cli ARGS...   the latentctl CLI, as `-m latentctl` runs it, where
                                            LATENTCTL_TEST_FAULT=raise makes rank 1 alone fail at its 2nd step
    python -m torchrun_worker resume DIR    the library's resume scenarios in one process group; each rank writes
                                            what it found to DIR/rankR.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from conftest import TINY, random_digits
from latentctl.errors import LatentctlError
from latentctl.eval.metrics import evaluate_classifier
from latentctl.eval.reading import predict_present
from latentctl.models.classifier import ClassifierConfig
from latentctl.train import classifier as classifier_module
from latentctl.train import distributed
from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer
from latentctl.train.gan import GANTrainer, TrainOptions

RANK = int(os.environ.get("RANK", "0"))


def hashes(trainer: Any) -> dict[str, str]:
    """A hash of each network's parameters and buffers, by name."""
    names = ("generator", "discriminator", "ema") if isinstance(trainer, GANTrainer) else ("model",)
    found = {}
    for name in names:
        digest = hashlib.sha256()
        for key, tensor in getattr(trainer, name).state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        found[name] = digest.hexdigest()
    return found


def run_cli(argv: list[str]) -> None:
    from latentctl.cli import main

    if os.environ.get("LATENTCTL_TEST_FAULT") == "raise" and RANK == 1:
        train_step = GANTrainer.train_step

        def failing_step(self: GANTrainer, batch_index: torch.Tensor) -> None:
            if self.global_step == 1:
                raise LatentctlError("batch 2 of this rank cannot be read", hint="a fault the test injected")
            train_step(self, batch_index)

        GANTrainer.train_step = failing_step
    sys.argv = ["latentctl", *argv]
    main()


def random_attributes(n: int = 256) -> AttributeData:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=generator, dtype=torch.uint8)
    attributes = torch.randint(0, 2, (n, 4), generator=generator, dtype=torch.uint8)
    # 63 validation images: the two ranks read 31 and 32 of them
    return AttributeData(images[:193], attributes[:193], images[193:], attributes[193:], list("abcd"), 178,
                         {"name": "random", "sha256": "0"})


def run_resume_scenarios(root: Path) -> None:
    group, device = distributed.start("cpu")
    digits, found = random_digits(256), {}
    options = TrainOptions(epochs=2, batch_size=32, seed=1, log_every=2, sample_every=100)

    straight = GANTrainer(TINY, options, digits, root / "straight", device, dist=group)
    straight.train()
    found["straight"] = hashes(straight)

    half = GANTrainer(TINY, dataclasses.replace(options, epochs=1), digits, root / "resumed", device, dist=group)
    half.train()
    resumed = GANTrainer.resume(root / "resumed", digits, device, epochs=2, dist=group)
    resumed.train()
    found["resumed"] = hashes(resumed)

    stopped = GANTrainer(TINY, options, digits, root / "stopped", device, dist=group)

    def rank_1_asks_to_stop(event: str, info: dict[str, Any]) -> None:
        if event == "step" and stopped.epoch == 1 and RANK == 1:
            stopped.stop_requested = True

    found["stop_returned"] = stopped.train(rank_1_asks_to_stop)
    found["stopped_at"] = [stopped.epoch, stopped.step_in_epoch]
    after_stop = GANTrainer.resume(root / "stopped", digits, device, dist=group)
    after_stop.train()
    found["stopped_and_resumed"] = hashes(after_stop)

    from_single = GANTrainer.resume(root / "single", digits, device, epochs=2, dist=group)
    from_single.train()
    found["from_single"] = hashes(from_single)
    found["from_single_at"] = [from_single.epoch, from_single.global_step]

    # the R1 penalty's gradients reach the weights outside DDP's forward: are they averaged over the ranks?
    penalised = GANTrainer(TINY, dataclasses.replace(options, epochs=1, r1=1.0), digits, root / "r1", device,
                           dist=group)
    penalised.train()
    found["r1"] = hashes(penalised)

    attributes, classifier = random_attributes(), ClassifierConfig(image_size=32, num_attributes=4, width=4)
    classifier_options = ClassifierOptions(epochs=2, batch_size=32, seed=1, log_every=2)
    straight_classifier = ClassifierTrainer(classifier, classifier_options, attributes, root / "c-straight", device,
                                            dist=group)
    read = []  # the validation images this rank ran the model on, per epoch

    def counting(model, images, batch_size):
        read.append(len(images))
        return predict_present(model, images, batch_size)

    classifier_module.predict_present = counting
    straight_classifier.train()
    classifier_module.predict_present = predict_present
    found["classifier_validation_read"] = read
    found["classifier_straight"] = hashes(straight_classifier)
    found["classifier_validation"] = straight_classifier.metrics  # each rank read half the split
    found["classifier_validation_whole"] = evaluate_classifier(  # one process reading all of it
        straight_classifier.model, attributes.val_images, attributes.val_attributes, names=attributes.names)
    # stopped as Ctrl-C stops it once the first epoch is done: the ranks agree at the next read of the loss
    half_classifier = ClassifierTrainer(classifier, classifier_options, attributes, root / "c-resumed", device,
                                        dist=group)

    def stop_after_epoch_1(event: str, info: dict[str, Any]) -> None:
        half_classifier.stop_requested = half_classifier.stop_requested or event == "epoch_end"

    assert half_classifier.train(stop_after_epoch_1) is False
    resumed_classifier = ClassifierTrainer.resume(root / "c-resumed", attributes, device, dist=group)
    resumed_classifier.train()
    found["classifier_resumed"] = hashes(resumed_classifier)
    found["classifier_metrics"] = resumed_classifier.metrics["mean_accuracy"]

    diverging = GANTrainer(TINY, options, digits, root / "nan", device, dist=group)
    if RANK == 1:
        with torch.no_grad():
            diverging.discriminator.head.bias.fill_(float("nan"))
    try:
        diverging.train()
    except LatentctlError as error:
        found["nan"] = [error.message, diverging.global_step]

    (root / f"rank{RANK}.json").write_text(json.dumps(found))
    distributed.finish()


if __name__ == "__main__":
    if sys.argv[1] == "cli":
        run_cli(sys.argv[2:])
    else:
        run_resume_scenarios(Path(sys.argv[2]))
