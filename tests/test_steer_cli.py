"""`latentctl steer`, `latentctl attributes` and `latentctl eval steer` through the CLI, on tiny untrained
models: files written, JSON, exit codes and error messages. How well steering works is test_quality's job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentctl import files, store
from latentctl.data.celeba import CELEBA_ATTRIBUTES
from latentctl.latent import DEFAULT_KEEP_OTHERS
from latentctl.models.classifier import AttributeClassifier, ClassifierConfig
from latentctl.models.dcgan import GANConfig, Generator

SIZE = 16


def save_generator(out: Path, size: int = SIZE) -> Path:
    torch.manual_seed(0)
    config = GANConfig(latent_dim=8, num_classes=0, image_size=size, channels=3, gen_width=8, disc_width=8,
                       upsample="nearest")
    store.save_model(out, store.ModelConfig(kind="gan", network=config, labels=[],
                                            normalization={"mean": [0.5] * 3, "std": [0.5] * 3}),
                     Generator(config))
    return out


def save_classifier(out: Path, seed: int = 0, size: int = SIZE) -> Path:
    torch.manual_seed(seed)
    config = ClassifierConfig(image_size=size, width=4)
    validation = {name: (0.9 if i % 2 else 0.6) for i, name in enumerate(CELEBA_ATTRIBUTES)}
    store.save_model(out, store.ModelConfig(
        kind="classifier", network=config, labels=list(CELEBA_ATTRIBUTES),
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3},
        training={"base_rates": {name: 0.25 for name in CELEBA_ATTRIBUTES},
                  "validation": {"balanced_accuracy": validation}}), AttributeClassifier(config).eval())
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("steer-models")
    return {"gan": save_generator(root / "gan"), "classifier": save_classifier(root / "classifier"),
            "judge": save_classifier(root / "judge", seed=1)}


def steer_args(models: dict[str, Path], *extra: object) -> list[object]:
    return ["steer", "--model", models["gan"], "--classifier", models["classifier"], "--device", "cpu",
            "--steps", 8, *extra]


def test_steer_writes_one_row_per_face_and_one_column_per_frame(cli, models, tmp_path):
    out = tmp_path / "male.png"
    result = cli(*steer_args(models, "--to", "Male", "--n", 3, "--frames", 4, "--scale", 1, out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    width, height = Image.open(out).size
    assert (width, height) == (2 + 4 * (SIZE + 2), 2 + 3 * (SIZE + 2))  # 4 frames x 3 faces, 2 px padding


def test_steer_json_lists_target_probabilities_and_biggest_changes_per_frame(cli, models, tmp_path):
    result = cli(*steer_args(models, "--to", "smiling", "--away-from", "eyeglasses", "--n", 2, "--frames", 3,
                             "--json", tmp_path / "s.png"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["to"] == ["Smiling"] and report["away_from"] == ["Eyeglasses"]
    assert len(report["faces"]) == 2 and [face["seed"] for face in report["faces"]] == [0, 1]
    frames = report["faces"][0]["frames"]
    assert [frame["step"] for frame in frames] == [0, 4, 8]
    assert set(frames[0]["targets"]) == {"Smiling", "Eyeglasses"}
    changed = frames[-1]["changed"]
    assert len(changed) == 3 and all(c["attribute"] not in ("Smiling", "Eyeglasses") for c in changed)


def test_steer_views_choose_how_many_nearby_faces_each_step_reads(cli, models, tmp_path):
    runs = {}
    for views in (1, 3):
        result = cli(*steer_args(models, "--to", "Male", "--n", 2, "--frames", 2, "--views", views, "--json",
                                 tmp_path / f"v{views}.png"))
        assert result.exit_code == 0, result.output
        runs[views] = json.loads(result.stdout)
        assert runs[views]["settings"]["views"] == views
    one, three = (Image.open(tmp_path / f"v{views}.png").tobytes() for views in (1, 3))
    assert one != three  # the nearby faces change the path, so the last frames differ
    assert cli(*steer_args(models, "--to", "Male", "--views", 0, tmp_path / "v0.png")).exit_code == 2


def test_steer_gif_animates_the_faces_in_a_square_grid(cli, models, tmp_path):
    out = tmp_path / "walk.gif"
    result = cli(*steer_args(models, "--to", "Male", "--n", 4, "--frames", 5, out))
    assert result.exit_code == 0, result.output
    gif = Image.open(out)
    # (identical consecutive frames of an untrained model may be merged by the GIF encoder)
    assert gif.format == "GIF" and gif.n_frames >= 2 and gif.size[0] == gif.size[1]  # 4 faces in 2 x 2


def test_direction_method_fits_once_then_reuses_the_cache(cli, models, tmp_path):
    args = steer_args(models, "--to", "Male", "--method", "direction", "--samples", 200, tmp_path / "d.png")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "fitting attribute directions" in first.stderr
    assert list((models["gan"] / "directions").glob("*.safetensors"))
    second = cli(*args)
    assert second.exit_code == 0 and "fitting" not in second.stderr


def test_steer_takes_latents_saved_by_sample(cli, models, tmp_path):
    latents = tmp_path / "z.safetensors"
    sampled = cli("sample", "--model", models["gan"], "--n", 2, "--save-latents", latents, "--device", "cpu",
                  tmp_path / "faces.png")
    assert sampled.exit_code == 0, sampled.output
    result = cli(*steer_args(models, "--to", "Male", "--from-noise", latents, "--json", tmp_path / "s.png"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["faces"]) == 2 and report["faces"][0]["seed"] is None


def test_unknown_attribute_is_a_usage_error_with_a_suggestion(cli, models, tmp_path):
    result = cli(*steer_args(models, "--to", "mael", tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "did you mean Male" in result.output and "latentctl attributes" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_attribute_is_refused_before_any_model_is_looked_up(cli, tmp_path):
    for flag in ("--to", "--away-from"):
        result = cli("steer", "--model", tmp_path / "no-model", flag, "Mael", tmp_path / "x.png")
        assert result.exit_code == 2 and "did you mean Male" in result.output and "no model" not in result.output


def test_steer_faces_is_the_steer_command_as_one_call(cli, models, tmp_path):
    from latentctl.latent.session import SteerOptions, steer_faces

    result = cli(*steer_args(models, "--to", "Smiling", "--away-from", "Eyeglasses", "--n", 2, "--frames", 3,
                             "--json", tmp_path / "cli.png"))
    assert result.exit_code == 0, result.output
    options = SteerOptions(steps=8, n=2, frames=3)
    report = steer_faces(model=models["gan"], classifier=models["classifier"], device="cpu", to=["Smiling"],
                         away_from=["Eyeglasses"], out=tmp_path / "lib.png", options=options)
    assert report.images.shape == (2, 3, 3, SIZE, SIZE)
    document = json.loads(result.stdout)
    assert document.pop("command") == "steer"
    assert {**report.to_json(), "output": None} == {**document, "output": None}  # the files differ, nothing else
    assert (tmp_path / "lib.png").read_bytes() == (tmp_path / "cli.png").read_bytes()


def test_an_attribute_both_towards_and_away_is_refused(cli, models, tmp_path):
    result = cli(*steer_args(models, "--to", "Male", "--away-from", "male", tmp_path / "x.png"))
    assert result.exit_code == 2 and "both" in result.output


def test_one_frame_is_refused(cli, models, tmp_path):
    result = cli(*steer_args(models, "--to", "Male", "--frames", 1, tmp_path / "x.png"))
    assert result.exit_code == 2


def test_no_target_is_refused(cli, models, tmp_path):
    result = cli(*steer_args(models, tmp_path / "x.png"))
    assert result.exit_code == 2 and "--to" in result.output


def test_without_a_classifier_it_says_how_to_train_one(cli, models, tmp_path):
    result = cli("steer", "--model", models["gan"], "--to", "Male", "--device", "cpu", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "latentctl train classifier" in result.stderr and "Traceback" not in result.output


def test_a_classifier_of_another_image_size_is_refused(cli, models, tmp_path):
    other = save_classifier(tmp_path / "big", size=32)
    result = cli("steer", "--model", models["gan"], "--classifier", other, "--to", "Male", "--device", "cpu",
                 tmp_path / "x.png")
    assert result.exit_code == 1
    assert "3x32x32" in result.stderr and "--size 16" in result.stderr


def test_a_generator_given_as_the_classifier_is_refused(cli, models, tmp_path):
    result = cli("steer", "--model", models["gan"], "--classifier", models["gan"], "--to", "Male",
                 "--device", "cpu", tmp_path / "x.png")
    assert result.exit_code == 1 and "classifier" in result.stderr


def test_attributes_lists_names_with_base_rates(cli, models):
    result = cli("attributes", "--classifier", models["classifier"], "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["attributes"]
    assert [row["name"] for row in rows] == list(CELEBA_ATTRIBUTES)
    assert rows[0]["base_rate"] == 0.25


def test_attributes_without_a_classifier_lists_celeba_names(cli):
    result = cli("attributes")
    assert result.exit_code == 0
    assert result.stdout.split() == list(CELEBA_ATTRIBUTES)


def test_eval_steer_prints_a_table_json_and_a_plot(cli, models, tmp_path):
    plot = tmp_path / "eval.png"
    result = cli("eval", "steer", "--model", models["gan"], "--classifier", models["classifier"], "--judge",
                 models["judge"], "--attribute", "Male", "--faces", 3, "--steps", 4, "--samples", 200,
                 "--plot", plot, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {(row["method"], row["keep_others"]) for row in report["scores"]}
    keep = DEFAULT_KEEP_OTHERS
    assert rows == {("gradient", keep), ("gradient", 0.0), ("direction", keep), ("direction", 0.0)}
    for row in report["scores"]:
        assert 0 <= row["success"] <= 1 and row["others"] >= 0 and row["faces"] >= 1
    assert report["readable"] == [name for i, name in enumerate(CELEBA_ATTRIBUTES) if i % 2]  # >= 0.8
    assert Image.open(plot).size[0] > 100


def test_eval_steer_until_leaves_faces_the_classifier_already_reads_as_the_target(cli, models, tmp_path):
    # a steering classifier that reads every face as male: with --until 0.9 no face needs to move
    sure = save_classifier(tmp_path / "sure-male")
    tensors = files.load_tensors(sure / store.WEIGHTS_FILE)
    tensors["head.bias"][CELEBA_ATTRIBUTES.index("Male")] = 5.0
    files.save_tensors(sure / store.WEIGHTS_FILE, tensors)
    args = ["eval", "steer", "--model", models["gan"], "--classifier", sure, "--judge", models["judge"],
            "--attribute", "Male", "--faces", 3, "--steps", 4, "--samples", 200, "--device", "cpu", "--json"]
    free, stopped = cli(*args), cli(*args, "--until", 0.9)
    assert free.exit_code == 0 and stopped.exit_code == 0, stopped.output
    report = json.loads(stopped.stdout)
    assert report["settings"]["until"] == 0.9
    assert all(row["moved"] > 0 for row in json.loads(free.stdout)["scores"])
    assert all(row["moved"] == 0 for row in report["scores"])
    for bad in (0.5, 1.0):
        refused = cli(*args, "--until", bad)
        assert refused.exit_code == 2 and "--until" in refused.stderr


def test_eval_steer_leaves_an_attribute_empty_when_the_judge_reads_every_face_as_having_it(cli, models, tmp_path):
    sure = save_classifier(tmp_path / "sure-judge", seed=2)  # a judge that reads every face as male
    tensors = files.load_tensors(sure / store.WEIGHTS_FILE)
    tensors["head.bias"][CELEBA_ATTRIBUTES.index("Male")] = 50.0
    files.save_tensors(sure / store.WEIGHTS_FILE, tensors)
    plot = tmp_path / "eval.png"
    result = cli("eval", "steer", "--model", models["gan"], "--classifier", models["classifier"], "--judge", sure,
                 "--attribute", "Male", "--attribute", "Smiling", "--faces", 2, "--steps", 2, "--samples", 200,
                 "--device", "cpu", "--plot", plot, "--json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "reads every face it searched as having Male" in result.stderr
    rows = json.loads(result.stdout)["scores"]
    male = [row for row in rows if row["attribute"] == "Male"]
    assert len(male) == 4 and all(row["faces"] == 0 and row["success"] is None for row in male)
    assert all(row["faces"] >= 1 and row["success"] is not None for row in rows if row["attribute"] == "Smiling")
    assert plot.is_file()


def test_eval_steer_refuses_the_steering_classifier_as_its_own_judge(cli, models):
    result = cli("eval", "steer", "--model", models["gan"], "--classifier", models["classifier"], "--judge",
                 models["classifier"], "--device", "cpu")
    assert result.exit_code == 1 and "judge" in result.stderr


def test_steer_says_how_many_faces_missed_a_target_and_what_may_help(cli, models, tmp_path):
    result = cli(*steer_args(models, "--to", "Male", "--away-from", "Smiling", "--n", 6, "--strength", 0.01,
                             "--json", tmp_path / "short.png"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    last = [face["frames"][-1]["targets"] for face in report["faces"]]
    expected = {"Male": sum(t["Male"] <= 0.5 for t in last), "Smiling": sum(t["Smiling"] >= 0.5 for t in last)}
    assert report["not_reached"] == {name: count for name, count in expected.items() if count}
    assert report["not_reached"]  # so short a walk leaves faces where they started, on both sides of 0.5
    for name, count in report["not_reached"].items():
        assert f"{count} of 6 faces did not {'reach' if name == 'Male' else 'lose'} {name}" in result.stderr
    assert "--method direction" in result.stderr and "--strength" in result.stderr


def test_eval_steer_refuses_an_unknown_attribute_by_its_own_flag_before_any_model_is_looked_up(cli, tmp_path):
    result = cli("eval", "steer", "--model", tmp_path / "no-model", "--judge", tmp_path / "no-judge",
                 "--attribute", "Mael")
    assert result.exit_code == 2 and "did you mean Male" in result.output and "no model" not in result.output
    assert "--attribute" in result.output and "--to" not in result.output


def test_direction_fits_are_cached_apart_and_say_their_held_out_accuracy(cli, models, tmp_path):
    cached = set((models["gan"] / "directions").glob("*.safetensors"))
    args = steer_args(models, "--to", "Male", "--method", "direction", "--samples", 200, "--json", tmp_path / "d.png")
    means, svm = cli(*args, "--fit", "class-means"), cli(*args, "--fit", "interfacegan")
    assert means.exit_code == 0 and svm.exit_code == 0, svm.output
    assert "fitting attribute directions (interfacegan)" in svm.stderr
    assert "Male's boundary (interfacegan, 200 faces): held-out accuracy" in svm.stderr
    boundary = json.loads(svm.stdout)["boundaries"]["Male"]
    assert boundary["fit"] == "interfacegan" and 0 <= boundary["accuracy_all"] <= 1
    assert json.loads(means.stdout)["boundaries"]["Male"]["fit"] == "class-means"
    assert len(set((models["gan"] / "directions").glob("*.safetensors")) - cached) >= 1  # one file per fit
    assert "fitting" not in cli(*args, "--fit", "interfacegan").stderr


def test_eval_steer_scores_each_fit_and_the_matching_component_on_the_same_faces(cli, models):
    result = cli("eval", "steer", "--model", models["gan"], "--classifier", models["classifier"], "--judge",
                 models["judge"], "--attribute", "Smiling", "--faces", 2, "--steps", 2, "--samples", 200,
                 "--method", "direction", "--method", "component", "--fit", "class-means", "--fit", "interfacegan",
                 "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    keep = DEFAULT_KEEP_OTHERS
    runs = {(row["method"], row["fit"].split(":")[0], row["keep_others"]) for row in report["scores"]}
    assert runs == {(method, fit, k) for method, fit in (("direction", "class-means"), ("direction", "interfacegan"),
                                                         ("component", "sefa")) for k in (keep, 0.0)}
    assert len({row["faces"] for row in report["scores"]}) == 1
    assert set(report["boundaries"]) == {"class-means", "interfacegan"}
    assert report["settings"]["samples"] == 200
    assert set(report["boundaries"]["interfacegan"]["Smiling"]) == {"fit", "accuracy_all", "accuracy_confident"}
    assert "interfacegan" in result.stderr and "sefa:" in result.stderr  # the tables, on stderr


@pytest.mark.parametrize("flag", ["--method", "--fit"])
def test_eval_steer_refuses_an_unknown_method_or_fit(cli, models, flag):
    result = cli("eval", "steer", "--model", models["gan"], "--classifier", models["classifier"], "--judge",
                 models["judge"], flag, "svm", "--device", "cpu")
    assert result.exit_code == 2 and "'svm'" in result.output and "Traceback" not in result.output


def test_evaluate_steer_refuses_a_method_the_model_cannot_take(models):
    from latentctl.errors import UsageError
    from latentctl.eval.steering import SteerEvalOptions, evaluate_steer

    for methods in (("svm",), ("label",)):
        with pytest.raises(UsageError) as caught:
            evaluate_steer(judge=models["judge"], model=models["gan"], classifier=models["classifier"], device="cpu",
                           options=SteerEvalOptions(attributes=("Male",), faces=1, methods=methods))
        assert caught.value.option == "--method"


def test_eval_steer_plot_draws_each_attributes_component_as_one_series():
    from latentctl.eval.steering import SteerEvaluation, SteerScore

    scores = [SteerScore(attribute=name, method="component", fit=f"sefa:{index}", keep_others=0.4, faces=2,
                         success=1.0, steerer_success=1.0, others=0.1, moved=0.1, seconds=0.0)
              for index, name in enumerate(["Male", "Smiling"])]
    panels = SteerEvaluation(None, Path("judge"), [], None, scores).panels()
    assert {series for bars in panels["success (judge)"].values() for series in bars} == \
        {"component (sefa), keep-others 0.4"}
