"""`latentctl sample` and `latentctl interpolate`: files, layouts, seeds, JSON, and bad input."""

from __future__ import annotations

import json

import numpy
import pytest
import torch
from PIL import Image

from latentctl.latent.sampling import lerp, noise_for_seeds, slerp

CELL = 28 + 2  # image plus the grid's padding


def test_sample_writes_a_grid_with_one_column_per_digit_by_default(cli, tiny_model, tmp_path):
    out = tmp_path / "grid.png"
    result = cli("sample", "--model", tiny_model, "--n", "20", "--scale", "1", out)
    assert result.exit_code == 0 and result.stdout.strip() == str(out)
    assert Image.open(out).size == (10 * CELL + 2, 2 * CELL + 2)


def test_sample_json_lists_every_image_with_its_label_and_seed(cli, tiny_model, tmp_path):
    result = cli("sample", "--model", tiny_model, "--per-digit", "3", "--seed", "5", "--json", tmp_path / "g.png")
    images = json.loads(result.stdout)["images"]
    assert len(images) == 30
    assert [i["label"] for i in images[:4]] == ["0", "0", "0", "1"]
    assert [i["seed"] for i in images[:3]] == [5, 6, 7]


def test_sample_digit_gives_only_that_digit(cli, tiny_model, tmp_path):
    result = cli("sample", "--model", tiny_model, "--digit", "7", "--n", "5", "--json", tmp_path / "g.png")
    assert {i["label"] for i in json.loads(result.stdout)["images"]} == {"7"}


def test_an_image_is_identified_by_its_seed(cli, tiny_model, tmp_path):
    cli("sample", "--model", tiny_model, "--digit", "3", "--n", "4", "--individual", tmp_path / "a")
    cli("sample", "--model", tiny_model, "--digit", "3", "--n", "1", "--seed", "2", "--individual", tmp_path / "b")
    third = Image.open(tmp_path / "a" / "0002-digit3-seed2.png")
    alone = Image.open(tmp_path / "b" / "0000-digit3-seed2.png")
    assert third.size == (28, 28)
    assert (numpy.asarray(third) == numpy.asarray(alone)).all()


def test_truncation_keeps_every_noise_entry_within_bounds():
    noise = noise_for_seeds(range(50), 100, truncation=0.5)
    assert noise.abs().max() <= 0.5
    assert torch.equal(noise, noise_for_seeds(range(50), 100, truncation=0.5))


def test_slerp_keeps_the_norm_of_gaussian_latents_where_lerp_shrinks_it():
    start, end = noise_for_seeds([0, 1], 512)
    weights = torch.linspace(0, 1, 9)
    spherical, linear = slerp(start, end, weights), lerp(start, end, weights)
    assert torch.allclose(spherical[0], start, atol=1e-5) and torch.allclose(spherical[-1], end, atol=1e-5)
    assert spherical[4].norm() > 0.95 * start.norm()
    assert linear[4].norm() < 0.8 * start.norm()


def test_interpolate_png_has_one_row_per_walk_and_one_column_per_frame(cli, tiny_model, tmp_path):
    out = tmp_path / "walk.png"
    result = cli("interpolate", "--model", tiny_model, "--digit", "7", "--frames", "5", "--rows", "3",
                 "--scale", "1", out)
    assert result.exit_code == 0
    assert Image.open(out).size == (5 * CELL + 2, 3 * CELL + 2)


def test_interpolate_gif_animates_forth_and_back(cli, tiny_model, tmp_path):
    out = tmp_path / "walk.gif"
    result = cli("interpolate", "--model", tiny_model, "--digit", "1", "--to-digit", "7", "--frames", "6",
                 "--rows", "2", "--json", out)
    document = json.loads(result.stdout)
    assert document["rows"][0] == {"from_seed": 0, "to_seed": 1, "from_label": "1", "to_label": "7"}
    gif = Image.open(out)
    assert gif.format == "GIF" and gif.n_frames == 6 + 4  # forth, then back without repeating the ends


def test_interpolate_without_out_writes_a_default_file_and_prints_its_name(cli, tiny_model, tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("interpolate", "--model", tiny_model, "--digit", "7")
    assert result.stdout.strip() == "interpolate-7.png"
    assert (tmp_path / "interpolate-7.png").is_file()


def test_interpolate_uses_the_model_in_latentctl_home_by_default(cli, tiny_model, isolated_home, tmp_path):
    import shutil

    shutil.copytree(tiny_model, isolated_home / "models" / "cgan-mnist")
    assert cli("interpolate", "--digit", "7", tmp_path / "w.png").exit_code == 0


@pytest.mark.parametrize("args, code, message", [
    (["sample", "--digit", "12"], 2, "12 is not a label of this model"),
    (["sample", "--digit", "-1"], 2, "Invalid value for '--digit'"),
    (["sample", "--digit", "3", "--per-digit", "2"], 2, "exclude each other"),
    (["interpolate", "--frames", "0"], 2, "Invalid value for '--frames'"),
    (["interpolate", "--to-digit", "3"], 2, "--to-digit needs --digit"),
    (["interpolate", "--mode", "cubic"], 2, "Invalid value for '--mode'"),
])
def test_bad_values_are_usage_errors(cli, tiny_model, tmp_path, args, code, message):
    result = cli(*args, "--model", tiny_model, tmp_path / "x.png")
    assert result.exit_code == code
    assert message in result.output
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("flag", ["--digit", "--to-digit"])
def test_a_digit_past_9_is_refused_before_any_model_is_looked_up(cli, tmp_path, flag):
    result = cli("interpolate", "--digit", "1", flag, "12", "--model", tmp_path / "no-model", tmp_path / "x.png")
    assert result.exit_code == 2 and f"Invalid value for '{flag}'" in result.output
    assert "no model" not in result.output


def test_the_library_call_draws_what_the_command_writes(cli, tiny_model, tmp_path):
    from latentctl import images as image_io
    from latentctl.latent.generation import SampleOptions, sample

    out = tmp_path / "grid.png"
    document = json.loads(cli("sample", "--model", tiny_model, "--per-digit", "2", "--seed", "3", "--json", out).stdout)
    drawn = sample(tiny_model, SampleOptions(per_digit=2, seed=3), device="cpu")  # no out: nothing written
    assert drawn.images.shape == (20, 1, 28, 28) and drawn.seeds == list(range(3, 23))
    assert [record["label"] for record in drawn.records] == [image["label"] for image in document["images"]]
    grid = image_io.to_pil(drawn.images, nrow=drawn.columns, scale=2)
    assert grid.tobytes() == Image.open(out).convert(grid.mode).tobytes()
    assert list(tmp_path.iterdir()) == [out]


def test_an_output_in_a_missing_folder_fails_cleanly(cli, tiny_model, tmp_path):
    result = cli("sample", "--model", tiny_model, tmp_path / "no" / "such" / "grid.png")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.output


def test_an_unknown_output_format_fails_cleanly(cli, tiny_model, tmp_path):
    result = cli("interpolate", "--model", tiny_model, "--digit", "7", tmp_path / "walk.mp4")
    assert result.exit_code == 1
    assert ".png" in result.stderr and ".gif" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_a_model_is_refused(cli, tmp_path):
    (tmp_path / "model").mkdir()
    result = cli("sample", "--model", tmp_path / "model", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "not a latentctl model folder" in result.stderr


def test_a_bad_output_path_fails_before_the_model_is_even_read(cli, tmp_path):
    result = cli("sample", "--model", tmp_path / "no-model", tmp_path / "grid.mp4")
    assert result.exit_code == 1 and ".png" in result.stderr and "no model" not in result.stderr
