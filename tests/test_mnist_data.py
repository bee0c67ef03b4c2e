"""MNIST on disk: IDX files, loading, the integrity check, downloading from a mirror, synthetic digits."""

from __future__ import annotations

import functools
import gzip
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from latentctl import paths
from latentctl.data import mnist
from latentctl.data.download import md5_file
from latentctl.data.mnist import SPLITS, SYNTHETIC_MARKER, check_mnist, load_mnist, read_idx, write_idx
from latentctl.data.synth_digits import synth_digits
from latentctl.errors import LatentctlError

N_TRAIN, N_TEST = 200, 50
FILE_NAMES = [name for pair in SPLITS.values() for name in pair]


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic MNIST, made once; tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("synthetic")
    synth_digits(root, n_train=N_TRAIN, n_test=N_TEST, seed=0)
    return root


@pytest.fixture
def synthetic_home(synthetic_set: Path, isolated_home: Path) -> Path:
    """A copy of the synthetic set where the CLI looks by default (under isolated_home); returns that folder."""
    root = paths.data_dir("mnist")
    shutil.copytree(synthetic_set, root)
    return root


def random_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ IDX files

@pytest.mark.parametrize("suffix", [".gz", ""], ids=["gzipped", "raw"])
@pytest.mark.parametrize("array", [random_images(7), np.arange(10, dtype=np.uint8)], ids=["images", "labels"])
def test_idx_round_trips(tmp_path: Path, suffix: str, array: np.ndarray) -> None:
    path = write_idx(tmp_path / f"data-idx{suffix}", array)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")
    np.testing.assert_array_equal(read_idx(path), array)


def test_idx_images_start_with_the_mnist_magic_number(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images", random_images(3))
    assert path.read_bytes()[:16] == bytes.fromhex("00000803" "00000003" "0000001c" "0000001c")


def test_gzipped_idx_is_byte_identical_for_equal_arrays(tmp_path: Path) -> None:
    first = write_idx(tmp_path / "a.gz", random_images(5)).read_bytes()
    assert write_idx(tmp_path / "b.gz", random_images(5)).read_bytes() == first


def _truncate(data: bytes) -> bytes:
    return data[:-100]


def _corrupt_magic(data: bytes) -> bytes:
    return b"\x00\x00\x0d\x03" + data[4:]


def _append(data: bytes) -> bytes:
    return data + b"\x00" * 3


@pytest.mark.parametrize(("damage", "expected"), [(_truncate, "truncated"), (_corrupt_magic, "magic"),
                                                  (_append, "longer than its header")],
                         ids=["truncated", "bad-magic", "too-long"])
def test_a_damaged_raw_idx_file_is_a_latentctl_error(tmp_path: Path, damage, expected: str) -> None:
    path = write_idx(tmp_path / "images", random_images(4))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LatentctlError, match=expected) as caught:
        read_idx(path)
    assert "download" in caught.value.hint


@pytest.mark.parametrize(("damage", "expected"), [(_truncate, "truncated"), (lambda data: data[:10] + b"x" * 50,
                                                                            "not a valid gzip file")],
                         ids=["truncated", "garbled"])
def test_a_damaged_gzipped_idx_file_is_a_latentctl_error(tmp_path: Path, damage, expected: str) -> None:
    path = write_idx(tmp_path / "images.gz", random_images(4))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LatentctlError, match=expected):
        read_idx(path)


# ------------------------------------------------------------------------------------------------- loading

def test_load_mnist_reads_gzipped_and_uncompressed_files(tmp_path: Path) -> None:
    images, labels = random_images(6), np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)  # uncompressed, as torchvision keeps it
    loaded_images, loaded_labels = load_mnist(tmp_path, "test")
    assert loaded_images.dtype == torch.uint8 and loaded_images.shape == (6, 28, 28)
    assert loaded_labels.dtype == torch.int64 and loaded_labels.tolist() == [0, 1, 2, 3, 4, 9]
    np.testing.assert_array_equal(loaded_images.numpy(), images)


def test_load_mnist_without_files_hints_at_download_and_synth(tmp_path: Path) -> None:
    with pytest.raises(LatentctlError, match="train-images-idx3-ubyte.gz is missing") as caught:
        load_mnist(tmp_path)
    assert "latentctl data download mnist" in caught.value.hint
    assert "latentctl data synth digits" in caught.value.hint


def test_load_mnist_rejects_labels_outside_0_to_9(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", random_images(2))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([3, 12], dtype=np.uint8))
    with pytest.raises(LatentctlError, match="label 12"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_more_images_than_labels(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", random_images(3))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([3, 4], dtype=np.uint8))
    with pytest.raises(LatentctlError, match="3 images but 2 labels"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_images_that_are_not_28_by_28(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 32, 32), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([3, 4], dtype=np.uint8))
    with pytest.raises(LatentctlError, match="28x28"):
        load_mnist(tmp_path)


# ------------------------------------------------------------------------------------------ synthetic digits

def test_synthetic_digits_have_mnist_shapes_dtypes_and_balanced_labels(synthetic_set: Path) -> None:
    for split, count in (("train", N_TRAIN), ("test", N_TEST)):
        images, labels = load_mnist(synthetic_set, split)
        assert images.shape == (count, 28, 28) and images.dtype == torch.uint8
        assert labels.shape == (count,) and labels.dtype == torch.int64
        assert torch.bincount(labels, minlength=10).tolist() == [count // 10] * 10


def test_synthetic_digits_are_white_strokes_centred_on_black(synthetic_set: Path) -> None:
    images = load_mnist(synthetic_set)[0].float()
    border = torch.cat([images[:, :2].flatten(1), images[:, -2:].flatten(1), images[:, :, :2].flatten(1),
                        images[:, :, -2:].flatten(1)], dim=1)
    assert border.max() < 64  # black margins, like MNIST: at most a faint blur tail
    assert (images.amax(dim=(1, 2)) == 255).all()
    assert 0.08 < images.mean() / 255 < 0.25  # mostly background: MNIST's mean is 0.13
    coords = torch.arange(28.0)
    mass = images.sum(dim=(1, 2))
    centres = torch.stack([(images.sum(dim=2) * coords).sum(dim=1), (images.sum(dim=1) * coords).sum(dim=1)]) / mass
    offsets = (centres - 13.5).abs()  # from the image centre, in pixels
    # Centre of mass at the centre up to a 1 px jitter; a few lopsided digits move in to stay in frame.
    assert (offsets <= 1.01).float().mean() > 0.9 and offsets.max() < 3


def test_synthetic_digits_are_identical_for_a_seed_and_differ_across_seeds(synthetic_set: Path,
                                                                            tmp_path: Path) -> None:
    synth_digits(tmp_path / "same", n_train=N_TRAIN, n_test=N_TEST, seed=0)
    synth_digits(tmp_path / "other", n_train=N_TRAIN, n_test=N_TEST, seed=1)
    for name in FILE_NAMES:
        assert md5_file(tmp_path / "same" / name) == md5_file(synthetic_set / name)
    assert md5_file(tmp_path / "other" / FILE_NAMES[0]) != md5_file(synthetic_set / FILE_NAMES[0])


def test_synthetic_test_split_does_not_depend_on_the_train_size(synthetic_set: Path, tmp_path: Path) -> None:
    synth_digits(tmp_path, n_train=30, n_test=N_TEST, seed=0)
    assert md5_file(tmp_path / "t10k-images-idx3-ubyte.gz") == md5_file(synthetic_set / "t10k-images-idx3-ubyte.gz")


def test_synthetic_set_carries_a_marker_naming_seed_and_counts(synthetic_set: Path) -> None:
    marker = json.loads((synthetic_set / SYNTHETIC_MARKER).read_text())
    assert marker["seed"] == 0 and marker["counts"] == {"train": N_TRAIN, "test": N_TEST}
    assert {"generator", "latentctl_version"} <= set(marker)


def test_synth_refuses_to_replace_official_files_without_force(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    root = paths.data_dir("mnist")
    root.mkdir(parents=True)
    official = root / "train-labels-idx1-ubyte.gz"
    official.write_bytes(b"stands in for the real file")
    monkeypatch.setitem(mnist.OFFICIAL_MD5, official.name, md5_file(official))

    refused = cli("data", "synth", "digits", "--n-train", "20", "--n-test", "10")
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert official.read_bytes() == b"stands in for the real file"
    forced = cli("data", "synth", "digits", "--n-train", "20", "--n-test", "10", "--force", "--json")
    assert forced.exit_code == 0
    assert str(official) in json.loads(forced.stdout)["files"]


def test_synth_refuses_to_shadow_uncompressed_mnist_files_without_force(cli) -> None:
    root = paths.data_dir("mnist")
    root.mkdir(parents=True)
    (root / "train-images-idx3-ubyte").write_bytes(b"a torchvision-style copy")
    refused = cli("data", "synth", "digits", "--n-train", "20", "--n-test", "10")
    assert refused.exit_code == 1 and "train-images-idx3-ubyte" in refused.stderr
    assert not (root / "train-images-idx3-ubyte.gz").exists()


# ------------------------------------------------------------------------------------------------ checking

def test_check_passes_on_a_synthetic_set_and_reports_it_not_official(cli, synthetic_home: Path) -> None:
    result = cli("data", "check", "mnist")
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.stderr and "not the official" in result.stderr
    report = check_mnist(synthetic_home)
    assert report.ok and report.synthetic is not None and not report.official
    assert [file.official for file in report.files] == [False] * 4
    assert report.splits[0].label_histogram == [N_TRAIN // 10] * 10


def test_check_json_is_one_parsable_document(cli, synthetic_home: Path) -> None:
    result = cli("data", "check", "mnist", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["official"] is False
    assert [file["name"] for file in document["files"]] == FILE_NAMES
    assert document["files"][0]["count"] == N_TRAIN and len(document["files"][0]["md5"]) == 32


def test_check_fails_naming_a_missing_file(cli, synthetic_home: Path) -> None:
    (synthetic_home / "t10k-labels-idx1-ubyte.gz").unlink()
    result = cli("data", "check", "mnist", "--json")
    assert result.exit_code == 1
    assert "t10k-labels-idx1-ubyte.gz is missing" in result.stderr and "Traceback" not in result.output
    assert json.loads(result.stdout)["problems"] == ["t10k-labels-idx1-ubyte.gz is missing"]


def test_check_fails_naming_a_truncated_file(cli, synthetic_home: Path) -> None:
    damaged = synthetic_home / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:-500])
    result = cli("data", "check", "mnist")
    assert result.exit_code == 1
    assert "train-images-idx3-ubyte.gz is corrupted" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.output


def test_check_of_an_empty_folder_points_at_download(cli) -> None:
    result = cli("data", "check", "mnist")
    assert result.exit_code == 1 and "latentctl data download mnist" in result.stderr


def test_an_unknown_dataset_is_a_usage_error(cli) -> None:
    assert cli("data", "check", "imagenet").exit_code == 2
    assert cli("data", "download", "imagenet").exit_code == 2


# --------------------------------------------------------------------------------------------- downloading

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def mirror(synthetic_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local HTTP mirror serving small MNIST files, declared official for the test; yields its URL."""
    served = tmp_path / "mirror"
    shutil.copytree(synthetic_set, served, ignore=shutil.ignore_patterns(SYNTHETIC_MARKER))
    for name in FILE_NAMES:
        monkeypatch.setitem(mnist.OFFICIAL_MD5, name, md5_file(served / name))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_from_a_mirror_writes_the_four_files_and_json_lists_them(cli, mirror: str) -> None:
    result = cli("data", "download", "mnist", "--mirror", mirror, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [file["name"] for file in document["files"]] == list(mnist.OFFICIAL_MD5)
    for file in document["files"]:
        assert md5_file(Path(file["path"])) == mnist.OFFICIAL_MD5[file["name"]]
    assert Path(document["root"]) == paths.data_dir("mnist")
    assert check_mnist(paths.data_dir("mnist")).ok


def test_download_replaces_a_damaged_file_and_drops_the_synthetic_marker(cli, mirror: str,
                                                                         synthetic_home: Path) -> None:
    (synthetic_home / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not these digits"))
    result = cli("data", "download", "mnist", "--mirror", mirror.rstrip("/"))  # a base URL without its slash
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [str(synthetic_home / name) for name in mnist.OFFICIAL_MD5]
    report = check_mnist(synthetic_home)
    assert report.ok and report.official and report.synthetic is None


def test_download_from_an_unreachable_mirror_is_a_one_line_error(cli) -> None:
    result = cli("data", "download", "mnist", "--mirror", "http://127.0.0.1:1/")
    assert result.exit_code == 1
    assert "127.0.0.1" in result.stderr and "amazonaws" not in result.stderr  # only the mirror given
    assert result.stderr.startswith("downloading mnist")  # then only the error and its hint
    assert [line.split(":")[0] for line in result.stderr.splitlines()[1:]] == ["error", "hint"]
    assert "Traceback" not in result.output and result.stdout == ""
    assert not (paths.data_dir("mnist") / "train-images-idx3-ubyte.gz").exists()
