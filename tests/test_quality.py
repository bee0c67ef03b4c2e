"""The quality bar, measured end to end through `latentctl demo` (about two minutes on two CPU cores).

The demo draws synthetic digits, trains the small cGAN, and scores it with a digit classifier trained only
on the dataset's own images. Generated digits must be read as the digit they were asked for, and must not
all look alike: a generator that draws one image per digit would pass the first check and fail the second.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from typer.testing import CliRunner

    from latentctl.cli import app

    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_generated_digits_are_the_asked_for_digit(demo_run):
    _, report = demo_run
    assert report["score"]["judge_accuracy"] >= 0.95  # the judge itself reads real test digits
    assert report["score"]["accuracy"] >= 0.95
    assert min(report["score"]["per_label"]) >= 0.8


def test_each_digit_comes_in_many_styles(demo_run):
    _, report = demo_run
    assert report["variety"]["generated"] >= 0.75 * report["variety"]["real"]


def test_demo_writes_what_its_table_lists(demo_run):
    out, report = demo_run
    grid = Image.open(report["files"]["samples"])
    assert grid.size[0] == grid.size[1]  # 10 x 10: one row per digit
    gif = Image.open(report["files"]["interpolation"])
    assert gif.format == "GIF" and gif.n_frames >= 16
    assert (out / "models" / "cgan" / "model.safetensors").is_file()
