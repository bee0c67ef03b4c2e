"""The conventions every command follows: help, version, fast start-up, exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from latentctl import __version__

LEAVES = [["data", "download"], ["data", "check"], ["data", "synth"], ["data", "import"], ["data", "prepare"],
          ["train", "cgan"], ["train", "gan"], ["train", "classifier"], ["classify"], ["sample"], ["interpolate"],
          ["steer"], ["attributes"], ["eval", "steer"], ["models", "list"], ["models", "show"], ["models", "rm"],
          ["models", "import"], ["hub", "push"], ["hub", "pull"], ["demo"], ["directions", "discover"]]
COMMANDS = [[], ["data"], ["train"], ["eval"], ["models"], ["hub"], ["directions"], *LEAVES]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_every_leaf_command_shows_examples(cli, command):
    assert "latentctl " + command[0] in cli(*command, "--help").output.split("Examples")[1]


def test_version_prints_the_package_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"latentctl {__version__}"


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "latentctl", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout


def test_help_does_not_import_torch():
    # Start-up cost of --help is dominated by importing torch; keep it out of the module top levels.
    code = ("import sys; from latentctl.cli import app; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_malformed_device_is_a_usage_error(cli, tiny_model):
    result = cli("sample", "--model", tiny_model, "--device", "gpu9", "x.png")
    assert result.exit_code == 2
    assert "not a device" in result.output


def test_cuda_without_cuda_is_a_one_line_runtime_error(cli, tiny_model, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("sample", "--model", tiny_model, "--device", "cuda", tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: CUDA was asked for")
    assert "Traceback" not in result.output


def test_expected_failures_print_one_error_line_and_a_hint_without_traceback(cli, tmp_path):
    result = cli("sample", "--model", tmp_path / "nowhere", tmp_path / "x.png")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: no model at")
    assert lines[1].startswith("hint: train one with 'latentctl train cgan'")
    assert len(lines) == 2 and result.stdout == ""


def test_json_goes_to_stdout_and_messages_to_stderr(cli, tiny_model, tmp_path):
    result = cli("sample", "--model", tiny_model, "--n", "4", "--json", tmp_path / "grid.png")
    assert result.exit_code == 0
    document = json.loads(result.stdout)  # nothing but the JSON document on stdout
    assert document["command"] == "sample"
    assert "wrote 4 images" in result.stderr


def test_no_colour_codes_when_output_is_not_a_terminal(cli, tmp_path):
    result = cli("sample", "--model", tmp_path / "nowhere")
    assert "\x1b[" not in result.stderr


@pytest.mark.parametrize("seed", ["-1", str(2**32), "abc"])
def test_an_out_of_range_seed_is_a_usage_error(cli, tiny_model, tmp_path, seed):
    result = cli("sample", "--model", tiny_model, "--seed", seed, tmp_path / "x.png")
    assert result.exit_code == 2 and not (tmp_path / "x.png").exists()
