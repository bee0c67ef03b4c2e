"""Training, data preparation and steering speed: latentctl's path against a plain baseline, in one run.

For the face GAN, the digit cGAN and the attribute classifier it times, back to back on the same device:

- **baseline**: the textbook loop (pytorch/examples' ``dcgan/main.py`` and the seed notebooks): a folder of
  image files decoded with PIL in a ``DataLoader`` (``--workers`` processes), ``ToTensor`` + ``Normalize``,
  ``BCEWithLogitsLoss``, ``.item()`` on every step's losses, plain fp32 Adam, NCHW tensors;
- **latentctl**: ``GANTrainer`` / ``ClassifierTrainer`` as ``latentctl train`` runs them (their ``train_step``
  with the host reading the losses every ``log_every`` steps), on a prepared-cache-like memory-mapped uint8
  array of the real size (202,599 faces at 64x64, 60,000 digits at 28x28);

both with the same networks (``--gen-width``/``--disc-width``/``--width`` as the CLI's defaults). Each
measurement runs in a fresh process, so the peak memory it reports is its own: resident memory, which counts
the pages of a memory-mapped set the process has touched (the set's one copy, in the page cache), not the
baseline's DataLoader processes. It then times the preparation of synthetic CelebA-layout JPEGs into the
cache, and steering (faces x frames per second).

Data is synthetic, of the real sizes: content does not change the speed of a convolution. The baseline's
folder holds only the files its timed steps read (its speed does not depend on how many more there are);
its images are already 64x64 (28x28), so it decodes small JPEGs (PNGs) and resizes nothing: a faster
baseline than the seed projects' 178x218 JPEGs resized on every read (see the "prepare" row for that cost).
Epoch times are extrapolated from images/s over the timed steps (after warm-up steps), not measured.

    python benchmarks/bench.py                      # everything, on CUDA when present (~3 min on 2 CPU cores)
    python benchmarks/bench.py --device cuda        # on a GPU, with more steps
    python benchmarks/bench.py --quick              # a smoke run of a minute or two
    python benchmarks/bench.py --only gan,steer --json results.json --plot docs/images/performance.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

CELEBA_IMAGES, CELEBA_TRAIN, CELEBA_VAL = 202_599, 162_770, 19_867  # the official split: 162,770 / 19,867 / 19,962
MNIST_IMAGES = 60_000
CASES = ("gan", "cgan", "classifier", "prepare", "steer")
WARMUP_SECONDS: list[float] = []  # of this process's measurement


@dataclass
class Plan:
    """What to run, and how long: the sizes the command line chose."""

    device: str
    faces: int  # images in the synthetic CelebA-sized set
    digits: int  # images in the synthetic MNIST-sized set
    gan_steps: int  # timed steps per measurement; warm-up steps come before them
    cgan_steps: int
    classifier_steps: int
    gan_warmup: int
    warmup: int  # of the cGAN and the classifier
    repeat: int  # every measurement this many times, interleaved; the best counts
    workers: int  # baseline DataLoader processes (pytorch/examples' dcgan default: 2)
    prepare_images: int
    steer_faces: int
    steer_frames: int
    steer_steps: int
    extra: list[str]  # latentctl variants timed besides the default ("fp32": the reference computation)


def make_plan(args: argparse.Namespace) -> Plan:
    cuda = args.device.startswith("cuda")
    if args.quick:
        return Plan(args.device, faces=8_192, digits=6_000, gan_steps=2, cgan_steps=5, classifier_steps=5, gan_warmup=1,
                    warmup=2, repeat=args.repeat, workers=args.workers, prepare_images=256, steer_faces=4,
                    steer_frames=4, steer_steps=4, extra=args.extra)
    return Plan(args.device, faces=CELEBA_IMAGES, digits=MNIST_IMAGES,
                gan_steps=200 if cuda else 6, cgan_steps=300 if cuda else 30, classifier_steps=200 if cuda else 30,
                gan_warmup=20 if cuda else 1, warmup=20 if cuda else 3, repeat=args.repeat, workers=args.workers,
                prepare_images=3_000, steer_faces=64 if cuda else 8, steer_frames=8,
                steer_steps=40, extra=args.extra)


# ------------------------------------------------------------------------------------------------- the data

def write_images(path: Path, count: int, channels: int, size: int, seed: int = 0, pool: int = 512) -> np.ndarray:
    """Write ``count`` uint8 images (N, C, size, size) as a .npy file, as the prepared cache stores them, and
    return it memory-mapped: a pool of smooth random pictures (low-frequency noise upsampled, which JPEG and
    PNG compress as they do faces and digits), repeated. Written a pool at a time: this process never holds
    the set, so the measurements it starts do not inherit its memory."""
    import torch
    from torch.nn import functional as F

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(min(pool, count), channels, 8, 8, generator=generator)
    fine = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    pictures = (fine * 255).round().to(torch.uint8).numpy()
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, channels, size, size))
    for start in range(0, count, len(pictures)):
        images[start:start + len(pictures)] = pictures[:count - start]
    images.flush()
    return np.load(path, mmap_mode="r")


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray, suffix: str) -> list[tuple[str, int]]:
    """Write images as files, one sub-folder per label (ImageFolder's layout); return (path, row) pairs."""
    from PIL import Image

    written = []
    for row, (picture, label) in enumerate(zip(images, labels, strict=True)):
        path = folder / str(int(label)) / f"{row:06d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        array = picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)
        Image.fromarray(array).save(path, **({"quality": 95} if suffix == ".jpg" else {}))
        written.append((str(path), row))
    return written


def prepare_data(plan: Plan, folder: Path, cases: list[str]) -> dict[str, Any]:
    """Make the synthetic sets: the memory-mapped arrays latentctl reads and the baseline's image folders."""
    data: dict[str, Any] = {}
    batches = {"gan": 128, "classifier": 64}
    if {"gan", "classifier"} & set(cases):
        data["faces"] = str(folder / "faces.npy")
        faces = write_images(folder / "faces.npy", plan.faces, 3, 64, seed=1)
        attributes = np.random.default_rng(2).integers(0, 2, (plan.faces, 40), dtype=np.uint8)
        np.save(folder / "attributes.npy", attributes)
        data["attributes"] = str(folder / "attributes.npy")
        needed = max((warmup + steps) * batches[case] for case, steps, warmup in
                     (("gan", plan.gan_steps, plan.gan_warmup), ("classifier", plan.classifier_steps, plan.warmup))
                     if case in cases)
        data["face_files"] = write_folder(folder / "face-files", faces[:needed], np.zeros(needed, int), ".jpg")
        del faces
    if "cgan" in cases:
        data["digits"] = str(folder / "digits.npy")
        digits = write_images(folder / "digits.npy", plan.digits, 1, 28, seed=3)
        labels = np.arange(plan.digits) % 10
        data["labels"] = str(folder / "labels.npy")
        np.save(data["labels"], labels)
        needed = (plan.warmup + plan.cgan_steps) * 128
        data["digit_files"] = write_folder(folder / "digit-files", digits[:needed], labels[:needed], ".png")
    return data


# ---------------------------------------------------------------------------------------- the measurements

def timed_steps(step, warmup: int, steps: int, synchronize) -> float:
    """Run ``warmup`` then ``steps`` calls of ``step(i)``; return the seconds the timed ones took."""
    started = time.perf_counter()
    for index in range(warmup):
        step(index)
    synchronize()
    WARMUP_SECONDS.append(time.perf_counter() - started)  # compilation, autotuning, first allocations
    started = time.perf_counter()
    for index in range(warmup, warmup + steps):
        step(index)
    synchronize()
    return time.perf_counter() - started


class PlainFolder:
    """The textbook dataset: a list of image files read with PIL on every access, and their targets."""

    def __init__(self, files: list[tuple[str, int]], targets: Any, mode: str, transform: Any) -> None:
        self.files, self.targets, self.mode, self.transform = files, targets, mode, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        from PIL import Image

        path, row = self.files[index]
        with Image.open(path) as image:
            picture = self.transform(image.convert(self.mode))
        return picture, self.targets[row]


def baseline_loader(files: list[tuple[str, int]], targets: Any, mode: str, batch_size: int, workers: int,
                    flip: bool) -> Any:
    import torch
    from torchvision import transforms

    channels = 1 if mode == "L" else 3
    steps = [transforms.RandomHorizontalFlip()] if flip else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize([0.5] * channels,
                                                                                        [0.5] * channels)])
    return torch.utils.data.DataLoader(PlainFolder(files, targets, mode, transform), batch_size=batch_size,
                                       shuffle=True, num_workers=workers, drop_last=True,
                                       persistent_workers=workers > 0)


def baseline_gan(job: dict[str, Any], device: Any, sync) -> float:
    """pytorch/examples' DCGAN loop (D on real, D on fake, one D step; then one G step), same networks."""
    import torch

    from latentctl.models.dcgan import Discriminator, Generator

    config = gan_config(job["case"])
    files = job["data"]["face_files" if job["case"] == "gan" else "digit_files"]
    targets = torch.from_numpy(np.load(job["data"]["labels"])) if config.conditional else torch.zeros(len(files))
    loader = baseline_loader(files, targets, "RGB" if config.channels == 3 else "L", 128, job["workers"],
                             flip=job["case"] == "gan")
    generator = Generator(config).fold_upsampling(False).to(device)  # nearest upsampling as written: the textbook
    discriminator = Discriminator(config).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = torch.nn.BCEWithLogitsLoss()
    batches = iter(loader)
    log: list[tuple[float, float]] = []

    def step(_: int) -> None:
        real, labels = next(batches)
        real = real.to(device)
        labels = labels.to(device) if config.conditional else None
        ones = torch.ones(real.shape[0], device=device)
        zeros = torch.zeros(real.shape[0], device=device)
        discriminator.zero_grad()
        loss_real = criterion(discriminator(real, labels), ones)
        loss_real.backward()
        fake = generator(torch.randn(real.shape[0], config.latent_dim, device=device), labels)
        loss_fake = criterion(discriminator(fake.detach(), labels), zeros)
        loss_fake.backward()
        opt_d.step()
        generator.zero_grad()
        loss_g = criterion(discriminator(fake, labels), ones)
        loss_g.backward()
        opt_g.step()
        log.append(((loss_real + loss_fake).item(), loss_g.item()))  # the progress bar's numbers, every step

    return timed_steps(step, job["warmup"], job["steps"], sync)


def baseline_classifier(job: dict[str, Any], device: Any, sync) -> float:
    """The seed's classifier loop: PIL-decoded faces with random flips, BCE over 40 attributes, Adam."""
    import torch

    from latentctl.models.classifier import AttributeClassifier, ClassifierConfig

    attributes = torch.from_numpy(np.load(job["data"]["attributes"])).float()
    loader = baseline_loader(job["data"]["face_files"], attributes, "RGB", 64, job["workers"], flip=True)
    model = AttributeClassifier(ClassifierConfig()).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.BCEWithLogitsLoss()
    batches = iter(loader)
    log: list[float] = []

    def step(_: int) -> None:
        images, targets = next(batches)
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), targets)
        loss.backward()
        optimizer.step()
        log.append(loss.item())

    return timed_steps(step, job["warmup"], job["steps"], sync)


def gan_config(case: str) -> Any:
    from latentctl.train import cgan, faces

    return faces.default_config() if case == "gan" else cgan.default_config()


def latentctl_gan(job: dict[str, Any], device: Any, sync) -> tuple[float, dict[str, Any]]:
    """GANTrainer's step on a memory-mapped uint8 set, as ``latentctl train gan``/``cgan`` runs it; then one
    epoch of batches read and normalised alone, to show the data path is not what limits the step."""
    import torch

    from latentctl.train.gan import GANTrainer, ImageDataset, TrainOptions

    config = gan_config(job["case"])
    faces = job["case"] == "gan"
    images = torch.from_numpy(np.load(job["data"]["faces" if faces else "digits"], mmap_mode="c"))
    labels = None if faces else torch.from_numpy(np.load(job["data"]["labels"]))
    dataset = ImageDataset(images, labels, [] if faces else [str(d) for d in range(10)], job["case"],
                           synthetic=True, identity={"name": "benchmark"})
    options = TrainOptions(batch_size=128, flip=faces, **job.get("options", {}))
    out = Path(tempfile.mkdtemp(prefix="run-", dir=job["scratch"]))
    trainer = GANTrainer(config, options, dataset, out, device, kind=job["case"])
    order = torch.randperm(images.shape[0]).to(trainer.images.device)
    batch = options.batch_size

    def step(index: int) -> None:
        trainer.train_step(order[index * batch:(index + 1) * batch])
        if trainer.global_step % options.log_every == 0:
            trainer.loss_sums.tolist()  # the loop's host read, every log_every steps

    seconds = timed_steps(step, job["warmup"], job["steps"], sync)
    return seconds, {"data_images_per_s": data_pass(trainer.images, order, batch, trainer.device, sync)}


def latentctl_classifier(job: dict[str, Any], device: Any, sync) -> tuple[float, dict[str, Any]]:
    """ClassifierTrainer's step on the train rows of a memory-mapped uint8 set, as ``latentctl train classifier``."""
    import torch

    from latentctl.models.classifier import ClassifierConfig
    from latentctl.train.classifier import AttributeData, ClassifierOptions, ClassifierTrainer

    images = np.load(job["data"]["faces"], mmap_mode="c")
    attributes = np.load(job["data"]["attributes"])
    train = int(len(images) * CELEBA_TRAIN / CELEBA_IMAGES)
    val = int(len(images) * CELEBA_VAL / CELEBA_IMAGES)
    data = AttributeData(*(torch.from_numpy(array) for array in (images[:train], attributes[:train],
                                                                 images[train:train + val],
                                                                 attributes[train:train + val])),
                         names=[f"a{i}" for i in range(40)], crop=178, fingerprint={"name": "benchmark"})
    options = ClassifierOptions(batch_size=64, **job.get("options", {}))
    out = Path(tempfile.mkdtemp(prefix="run-", dir=job["scratch"]))
    trainer = ClassifierTrainer(ClassifierConfig(), options, data, out, device)
    trainer.model.train()
    order = torch.randperm(train).to(trainer.train_images.device)
    flips = (torch.rand(train) < 0.5).to(device)
    batch = options.batch_size

    def step(index: int) -> None:
        window = slice(index * batch, (index + 1) * batch)
        trainer.train_step(order[window], flips[window])
        if trainer.global_step % options.log_every == 0:
            trainer.loss_sum.item()

    return timed_steps(step, job["warmup"], job["steps"], sync), {}


def data_pass(images: Any, order: Any, batch: int, device: Any, sync) -> float:
    """Images/s of cutting and normalising every batch of an epoch, the model left out."""
    from latentctl.images import to_unit_range
    from latentctl.train.gan import batch_to

    started = time.perf_counter()
    for start in range(0, len(order) - batch + 1, batch):
        to_unit_range(batch_to(images[order[start:start + batch]], device))
    sync()
    return (len(order) // batch) * batch / (time.perf_counter() - started)


def prepare_job(job: dict[str, Any], device: Any, sync) -> tuple[float, dict[str, Any]]:
    """``latentctl data prepare celeba`` on synthetic faces in CelebA's layout (178x218 JPEGs), every core."""
    from latentctl.data.prepare import prepare_celeba
    from latentctl.data.synth_faces import synth_faces

    root = Path(tempfile.mkdtemp(prefix="celeba-", dir=job["scratch"]))
    synth_faces(root, job["images"], seed=0)
    started = time.perf_counter()
    result = prepare_celeba(root)
    return time.perf_counter() - started, {"workers": os.cpu_count(), "images": result.images}


def steer_job(job: dict[str, Any], device: Any, sync) -> tuple[float, dict[str, Any]]:
    """``steer`` with the default settings on untrained networks of the real sizes (the speed does not depend
    on the weights): a 64x64 face GAN and the 40-attribute classifier."""
    import torch

    from latentctl.latent.sampling import noise_for_seeds
    from latentctl.latent.steer import SteerSettings, Target, steer
    from latentctl.models.classifier import AttributeClassifier, ClassifierConfig
    from latentctl.models.dcgan import Generator
    from latentctl.train import faces

    torch.manual_seed(0)
    generator = Generator(faces.default_config()).to(device).eval()
    classifier = AttributeClassifier(ClassifierConfig()).to(device).eval()
    noise = noise_for_seeds(range(job["faces"]), 100)
    settings = SteerSettings(method=job["method"], steps=job["steps"], frames=job["frames"])
    if job.get("views"):
        settings = dataclasses.replace(settings, views=job["views"])
    direction = torch.nn.functional.normalize(torch.randn(100), dim=0) if job["method"] == "direction" else None
    targets = [Target(20, "Male", +1)]
    steer(generator, classifier, noise[:2], targets, settings, direction)  # warm-up
    sync()
    started = time.perf_counter()
    steer(generator, classifier, noise, targets, settings, direction)
    sync()
    return time.perf_counter() - started, {}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this process; return its numbers."""
    import torch

    device = torch.device(job["device"])
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.set_float32_matmul_precision("high")  # as the train commands do
    if job.get("no_native_bf16"):
        from latentctl.train import speed

        speed.cpu_has_native_bf16 = lambda: False
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    extra: dict[str, Any] = {}
    if job["kind"] == "baseline":
        seconds = (baseline_classifier if job["case"] == "classifier" else baseline_gan)(job, device, sync)
    elif job["kind"] == "latentctl":
        seconds, extra = (latentctl_classifier if job["case"] == "classifier" else latentctl_gan)(job, device, sync)
    elif job["kind"] == "prepare":
        seconds, extra = prepare_job(job, device, sync)
    else:
        seconds, extra = steer_job(job, device, sync)
    return {"seconds": seconds, "warmup_seconds": sum(WARMUP_SECONDS), "items": job["items"],
            "measured": job.get("measured", ""),
            "per_s": job["items"] / seconds, "peak_host_gb": peak_host_memory() / 2**30,
            "peak_device_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, **extra}


def peak_host_memory() -> int:
    """Bytes: this process's peak resident memory (Linux's VmHWM, which starts anew at exec; elsewhere
    ru_maxrss, which may include what the parent held when it started this process)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def in_subprocess(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``job`` in a fresh Python process, so its peak memory is its own."""
    done = subprocess.run([sys.executable, __file__, "--job"], input=json.dumps(job), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{job['case']} {job['kind']} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- the run

def jobs_for(plan: Plan, data: dict[str, Any], cases: list[str]) -> list[dict[str, Any]]:
    """Every measurement, the baseline of a model right before latentctl's path on it."""
    common = {"device": plan.device, "data": data, "workers": plan.workers}
    jobs: list[dict[str, Any]] = []
    train = {"gan": (plan.gan_steps, 128, plan.gan_warmup), "cgan": (plan.cgan_steps, 128, plan.warmup),
             "classifier": (plan.classifier_steps, 64, plan.warmup)}
    for case in ("gan", "cgan", "classifier"):
        if case not in cases:
            continue
        steps, batch, warmup = train[case]
        common["warmup"] = warmup
        jobs.append({**common, "case": case, "kind": "baseline", "label": "baseline", "steps": steps,
                     "items": steps * batch})
        jobs.append({**common, "case": case, "kind": "latentctl", "label": "latentctl", "steps": steps,
                     "items": steps * batch})
        for variant in plan.extra:
            jobs.append({**common, "case": case, "kind": "latentctl", "label": f"latentctl {variant}",
                         "steps": steps, "items": steps * batch, "options": variant_options(variant),
                         "no_native_bf16": variant in NO_NATIVE_BF16})
    if "prepare" in cases:
        jobs.append({"device": "cpu", "case": "prepare", "kind": "prepare", "label": "latentctl",
                     "images": plan.prepare_images, "items": plan.prepare_images,
                     "measured": f"{plan.prepare_images:,} images"})
    if "steer" in cases:
        # The plain loop first: the gradient read from each face alone, as the seed project stepped.
        for method, views, label in (("gradient", 1, "gradient, each face alone (plain)"),
                                     ("gradient", None, "gradient, 4 smoothed views (default)"),
                                     ("direction", None, "direction")):
            jobs.append({"device": plan.device, "case": "steer", "kind": "steer", "label": label,
                         "method": method, "views": views, "plain": views == 1, "faces": plan.steer_faces,
                         "frames": plan.steer_frames, "steps": plan.steer_steps,
                         "items": plan.steer_faces * plan.steer_frames,
                         "measured": f"{plan.steer_faces} faces x {plan.steer_frames} frames"})
    return jobs


VARIANTS = {"fp32": {"precision": "fp32"}, "bf16": {"precision": "bf16"}, "compile": {"compile": True},
            "no-compile": {"compile": False},
            "float32": {}}  # auto as on a CPU without bf16 instructions: channels-last float32
NO_NATIVE_BF16 = {"float32"}  # variants that run as if the CPU had no bf16 instructions


def variant_options(variant: str) -> dict[str, Any]:
    """TrainOptions / ClassifierOptions fields of a named latentctl variant (``--extra``)."""
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[variant]


EPOCH_IMAGES = {"gan": CELEBA_IMAGES, "cgan": MNIST_IMAGES, "classifier": CELEBA_TRAIN}
UNITS = {"gan": "images/s", "cgan": "images/s", "classifier": "images/s", "prepare": "images/s",
         "steer": "faces x frames/s"}


def table(results: list[dict[str, Any]]) -> str:
    """A markdown table of the results, with each latentctl row's ratio to its model's baseline (steering: to
    the plain gradient loop's)."""
    lines = ["| what | path | speed | vs baseline | time | peak host memory | peak GPU memory |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    baselines = {r["case"]: r["per_s"] for r in results if r["kind"] == "baseline"}
    plain_steer = next((r["per_s"] for r in results if r.get("plain")), None)
    for r in results:
        ratio = f"{r['per_s'] / baselines[r['case']]:.2f}x" if r["kind"] == "latentctl" and r["case"] in baselines \
            else ("1.00x" if r["kind"] == "baseline" else "")
        if r["kind"] == "steer" and plain_steer:
            ratio = f"{r['per_s'] / plain_steer:.2f}x"
        epoch = (f"{EPOCH_IMAGES[r['case']] / r['per_s']:,.1f} s an epoch (extrapolated)" if r["case"] in EPOCH_IMAGES
                 else f"{r['seconds']:,.2f} s for {r['measured']}")
        device_memory = f"{r['peak_device_gb']:.2f} GB" if r.get("peak_device_gb") is not None else ""
        speed = f"{r['per_s']:,.1f} {UNITS[r['case']]}" if r["per_s"] < 100 else f"{r['per_s']:,.0f} {UNITS[r['case']]}"
        lines.append(f"| {r['case']} | {r['label']} | {speed} | {ratio} | {epoch} | {r['peak_host_gb']:.2f} GB | "
                     f"{device_memory} |")
        if r.get("data_images_per_s") and r["label"] == "latentctl":
            lines.append(f"| {r['case']} | latentctl data path alone (an epoch of batches cut and normalised) | "
                         f"{r['data_images_per_s']:,.0f} images/s | | | | |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Draw each training path's images/s as a multiple of its model's baseline (linear bars) into a PNG."""
    from PIL import Image, ImageDraw

    baselines = {r["case"]: r["per_s"] for r in results if r["kind"] == "baseline"}
    rows = [r for r in results if r["case"] in baselines]
    width, bar, gap, left, top = 760, 22, 10, 250, 40
    height = top + len(rows) * (bar + gap) + 40
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((10, 10), title, fill="black")
    ratios = [r["per_s"] / baselines[r["case"]] for r in rows]
    scale = (width - left - 170) / max(ratios)
    colours = {"baseline": (150, 150, 150), "latentctl": (40, 110, 200)}
    draw.line([left + scale, top - 4, left + scale, height - 36], fill=(200, 200, 200))
    for index, (r, ratio) in enumerate(zip(rows, ratios, strict=True)):
        y = top + index * (bar + gap)
        draw.text((10, y + 5), f"{r['case']}: {r['label']}", fill="black")
        draw.rectangle([left, y, left + ratio * scale, y + bar], fill=colours.get(r["kind"], (40, 110, 200)))
        draw.text((left + ratio * scale + 6, y + 5), f"{ratio:.2f}x  ({r['per_s']:,.1f} images/s)", fill="black")
    draw.text((left, height - 25), "training images/s, as a multiple of the plain baseline's (the line: 1x)",
              fill="gray")
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def plot_title(about: dict[str, Any], device: str) -> str:
    where = about.get("gpu", device) if device.startswith("cuda") else f"{about['cpu']}, {about['cpus']} CPU cores"
    return f"latentctl against the plain baseline on {where} (torch {about['torch']})"


def machine() -> dict[str, Any]:
    import torch

    from latentctl.train import speed

    about = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
             "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
             "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_native_bf16": speed.cpu_has_native_bf16(),
             "load": os.getloadavg()}
    if Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        about["cpu"] = names[0] if names else about["cpu"]
    if torch.cuda.is_available():
        about["gpu"] = torch.cuda.get_device_name()
    return about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if _cuda_available() else "cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--quick", action="store_true", help="small sets and few steps: a smoke run")
    parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader processes")
    parser.add_argument("--repeat", type=int, default=1, help="run every measurement N times, interleaved; "
                        "report the best (for a machine that other work disturbs)")
    parser.add_argument("--extra", default="fp32", help="latentctl variants to time as well, comma-separated, "
                        "from fp32 (the reference computation), bf16, float32 (auto as on a CPU without bf16 "
                        "instructions), compile, no-compile; '' for none")
    parser.add_argument("--json", type=Path, help="write the results and the machine's description here")
    parser.add_argument("--plot", type=Path, help="draw the training speeds into this PNG")
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)  # internal: one measurement, from stdin
    args = parser.parse_args()
    if args.job:
        print(json.dumps(run_job(json.loads(sys.stdin.read()))))
        return
    args.extra = [v for v in args.extra.split(",") if v]
    cases = [case for case in args.only.split(",") if case]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    plan = make_plan(args)
    about = machine()
    bf16 = ", bf16 instructions" if about["cpu_native_bf16"] else ""
    print(f"# {about['cpu']}, {about['cpus']} CPUs ({about['cpu_capability']}{bf16}), {about.get('gpu', 'no GPU')}, "
          f"torch {about['torch']}; device {plan.device}; load average {about['load'][0]:.2f}", file=sys.stderr)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="latentctl-bench-") as folder:
        data = prepare_data(plan, Path(folder), cases)
        print(f"# synthetic data ready in {time.perf_counter() - started:.0f}s", file=sys.stderr)
        for round_ in range(plan.repeat):
            for index, job in enumerate(jobs_for(plan, data, cases)):
                job["scratch"] = folder  # the measurements' own files go where the data is, and go with it
                load = os.getloadavg()[0]
                result = {"case": job["case"], "kind": job["kind"], "label": job["label"], "load_before": load,
                          "plain": job.get("plain", False), **in_subprocess(job)}
                print(f"# {job['case']:10s} {job['label']:18s} {result['per_s']:10,.1f}/s  (load {load:.2f})",
                      file=sys.stderr)
                if round_ == 0:
                    results.append(result | {"all_per_s": [result["per_s"]]})
                else:  # the best of the rounds: the one least disturbed by anything else running
                    best = results[index]
                    runs = best["all_per_s"] + [result["per_s"]]
                    results[index] = (result if result["per_s"] > best["per_s"] else best) | {"all_per_s": runs}
    print(table(results))
    print(f"# {time.perf_counter() - started:.0f}s in all; load average now {os.getloadavg()[0]:.2f}",
          file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"machine": about, "plan": asdict(plan), "results": results}, indent=1))
    if args.plot:
        plot(results, args.plot, plot_title(about, plan.device))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
