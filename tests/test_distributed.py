"""Training in two CPU processes (gloo) under torchrun: identical ranks, exact resume, the single-process
format, one message when a rank fails. Each launch starts three Python processes: seconds, not minutes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import TINY, TINY_FACE_FLAGS, random_digits
from latentctl import files, store
from latentctl.data.synth_digits import synth_digits
from latentctl.errors import LatentctlError
from latentctl.models.dcgan import Discriminator
from latentctl.train import distributed
from latentctl.train.distributed import Distributed
from latentctl.train.gan import GANTrainer, TrainOptions

TESTS = Path(__file__).parent
TIMEOUT = 120  # a hang fails the test instead of stalling the suite
TINY_FACES = (*TINY_FACE_FLAGS, "--sample-every", "100")
TINY_DIGITS = ("--batch-size", "32", "--latent-dim", "16", "--gen-width", "8", "--disc-width", "8",
               "--sample-every", "100")


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "LATENTCTL_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}


def two_processes(home: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m torchrun_worker ARGS`` in two processes under torchrun, as ``--nproc 2`` starts them."""
    launcher = ("import sys; from latentctl.train.distributed import launch; "
                "sys.exit(launch(sys.argv[1:], 2, module='torchrun_worker'))")
    env = environment(home) | ({"LATENTCTL_TEST_FAULT": fault} if fault else {})
    return subprocess.run([sys.executable, "-c", launcher, *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


# ------------------------------------------------------------------------------- without a process group

def test_each_rank_takes_its_own_slice_of_every_global_batch():
    batch = torch.randperm(32)
    parts = [Distributed(rank, 2).shard(batch) for rank in range(2)]
    assert [len(part) for part in parts] == [16, 16]
    assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
    assert torch.equal(Distributed().shard(batch), batch)


def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(LatentctlError, match="does not split into 3 equal batches") as error:
        GANTrainer(TINY, TrainOptions(batch_size=32), random_digits(64), Path("unused"), torch.device("cpu"),
                   dist=Distributed(0, 3))
    assert "multiple of 3" in error.value.hint


def test_sync_bn_on_the_cpu_is_refused_with_a_hint():
    with pytest.raises(LatentctlError, match="SyncBatchNorm does not run on the CPU"):
        Distributed(0, 2).sync_batchnorm(Discriminator(TINY), torch.device("cpu"))


def test_without_torchrun_there_is_no_process_group(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    group, device = distributed.start("cpu")
    assert group == distributed.SINGLE and device == torch.device("cpu")
    assert not torch.distributed.is_initialized()


def test_nproc_under_torchrun_is_a_usage_error(cli, monkeypatch, tmp_path):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost",
                        "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    result = cli("train", "cgan", "--nproc", "2", "--out", tmp_path / "run")
    assert result.exit_code == 2 and "--nproc-per-node" in result.stderr


def test_the_restarted_command_line_has_no_nproc():
    from latentctl.train.runs import without_nproc

    assert without_nproc(["--debug", "train", "gan", "--nproc", "2", "--epochs", "3", "--nproc=4"]) == \
        ["--debug", "train", "gan", "--epochs", "3"]


# ------------------------------------------------------------------------------- two processes, torchrun

@pytest.fixture(scope="module")
def resume_scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of two ranks found in tests/torchrun_worker.py's resume scenarios."""
    root = tmp_path_factory.mktemp("scenarios")
    options = TrainOptions(epochs=1, batch_size=32, seed=1, log_every=2, sample_every=100)
    GANTrainer(TINY, options, random_digits(256), root / "single", torch.device("cpu")).train()
    result = two_processes(root / "home", "resume", str(root))
    assert result.returncode == 0, result.stderr
    return [json.loads((root / f"rank{rank}.json").read_text()) for rank in range(2)]


def test_ranks_hold_identical_networks_after_training(resume_scenarios):
    rank0, rank1 = resume_scenarios
    for scenario in ("straight", "resumed", "stopped_and_resumed", "from_single", "r1", "classifier_straight"):
        assert rank0[scenario] == rank1[scenario], scenario


def test_ranks_share_the_validation_split_and_report_what_one_process_would(resume_scenarios):
    rank0, rank1 = resume_scenarios
    assert rank0["classifier_validation_read"] == [31, 31] and rank1["classifier_validation_read"] == [32, 32]
    assert rank0["classifier_validation"]["images"] == 63
    assert rank0["classifier_validation"] == rank1["classifier_validation"] == rank0["classifier_validation_whole"]


def test_a_distributed_run_resumes_bit_for_bit_with_as_many_processes(resume_scenarios):
    found = resume_scenarios[0]
    assert found["resumed"] == found["straight"]
    assert found["classifier_resumed"] == found["classifier_straight"]


def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step_and_resumes_exactly(resume_scenarios):
    rank0, rank1 = resume_scenarios
    assert rank0["stop_returned"] is rank1["stop_returned"] is False
    assert rank0["stopped_at"] == rank1["stopped_at"] == [1, 4]  # asked at step 2, agreed at the next loss read
    assert rank0["stopped_and_resumed"] == rank0["straight"]


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step(resume_scenarios):
    rank0, rank1 = resume_scenarios
    assert rank0["nan"] == rank1["nan"]  # the losses are averaged over the ranks before they are checked
    assert "training diverged at epoch 1, step 2" in rank0["nan"][0]


def test_a_single_process_checkpoint_resumes_in_two_processes(resume_scenarios):
    rank0, rank1 = resume_scenarios
    assert rank0["from_single_at"] == rank1["from_single_at"] == [2, 16]  # the second epoch's 8 steps, in step


@pytest.fixture(scope="module")
def two_process_run(faces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A face GAN trained for one epoch by `latentctl train gan --nproc 2 --json`, which also prepares the cache."""
    root = tmp_path_factory.mktemp("nproc")
    command = [sys.executable, "-m", "latentctl", "train", "gan", "--nproc", "2", "--device", "cpu", "--data-root",
               str(faces_root), "--out", str(root / "two"), "--epochs", "1", *TINY_FACES, "--json"]
    return root / "two", subprocess.run(command, env=environment(root / "home"), capture_output=True, text=True,
                                        timeout=TIMEOUT)


def test_nproc_trains_in_two_processes_in_the_single_process_format(cli, two_process_run, faces_root, tmp_path):
    two, result = two_process_run
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # one document: rank 0's
    assert report["training"]["world_size"] == 2 and "2 CPU processes" in result.stderr
    one = tmp_path / "one"
    assert cli("train", "gan", "--data-root", faces_root, "--out", one, "--epochs", "1", *TINY_FACES).exit_code == 0

    def listing(folder: Path) -> list[str]:
        return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())

    assert listing(two) == listing(one)
    assert files.load_tensors(two / store.WEIGHTS_FILE).keys() == files.load_tensors(one / store.WEIGHTS_FILE).keys()
    state = files.load_tensors(two / store.STATE_TENSORS_FILE)
    assert set(state) - set(files.load_tensors(one / store.STATE_TENSORS_FILE)) == {"rng.noise.rank1"}
    assert not torch.equal(state["rng.noise"], state["rng.noise.rank1"])  # each rank has its own noise
    assert store.read_config(two).kind == "gan"
    store.load_model(two, "gan")


def test_a_distributed_checkpoint_resumes_in_a_single_process(cli, two_process_run, faces_root, tmp_path):
    out = tmp_path / "two"
    shutil.copytree(two_process_run[0], out)
    result = cli("train", "gan", "--resume", "--data-root", faces_root, "--out", out, "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    assert "resuming a run of 2 process(es) with 1" in result.stderr
    assert json.loads((out / store.STATE_JSON_FILE).read_text())["world_size"] == 1
    assert store.read_config(out).training["epochs"] == 2


def test_a_gan_conditioned_on_attributes_trains_in_two_processes(faces_root, tmp_path):
    # every parameter takes part in every step's loss (the attribute head too), as DistributedDataParallel needs
    out = tmp_path / "two"
    command = [sys.executable, "-m", "latentctl", "train", "gan", "--nproc", "2", "--device", "cpu", "--data-root",
               str(faces_root), "--out", str(out), "--epochs", "1", *TINY_FACES, "--condition", "attributes",
               "--json"]
    result = subprocess.run(command, env=environment(tmp_path / "home"), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["training"]["world_size"] == 2
    generator, config = store.load_model(out, "gan")
    assert config.architecture["num_attributes"] == len(config.labels) == 29
    assert generator.attribute_prior.sum() > 0


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "digits"
    synth_digits(root, n_train=128, n_test=32, seed=0)
    return root


def test_a_failure_on_one_rank_stops_both_with_one_message(digits, tmp_path):
    out = tmp_path / "run"
    result = two_processes(tmp_path / "home", "cli", "train", "cgan", "--device", "cpu", "--data-root", str(digits),
                           "--out", str(out), "--epochs", "2", *TINY_DIGITS, fault="raise")
    assert result.returncode == 1  # rank 0, waiting for rank 1 in a collective, did not hang
    assert "error: rank 1: batch 2 of this rank cannot be read" in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert not (out / store.WEIGHTS_FILE).exists()  # the first epoch never completed: nothing was saved


def test_fid_under_torchrun_is_measured_by_rank_0_as_eval_fid_measures_it(cli, digits, random_inception, tmp_path):
    out = tmp_path / "run"
    result = two_processes(tmp_path / "home", "cli", "train", "cgan", "--device", "cpu", "--data-root", str(digits),
                           "--out", str(out), "--epochs", "1", *TINY_DIGITS, "--fid-every", "1", "--fid-images", "8",
                           "--inception-weights", str(random_inception))
    assert result.returncode == 0, result.stderr
    recorded = store.read_config(out).training["fid"]
    assert [entry["epoch"] for entry in recorded] == [1] and result.stderr.count("FID") == 1  # rank 0 alone
    again = cli("eval", "fid", "--model", out, "--data", digits, "--n", "8", "--inception-weights", random_inception,
                "--device", "cpu", "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["fid"] == pytest.approx(recorded[0]["fid"], abs=1e-3)
