"""A face GAN conditioned on attributes: ``train gan --condition attributes``, and ``sample`` / ``interpolate``
with ``--with`` and ``--without``, on tiny synthetic faces."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_FACE_FLAGS as TINY_FLAGS
from conftest import weights
from latentctl import store
from latentctl.data.synth_faces import RENDERED_ATTRIBUTES, synth_faces
from latentctl.models.dcgan import Discriminator, GANConfig, Generator, split_logits


@pytest.fixture(scope="module")
def attribute_model(faces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny attribute-conditioned face GAN trained for one epoch through the CLI."""
    from typer.testing import CliRunner

    from latentctl.cli import app

    out = tmp_path_factory.mktemp("models") / "gan-attributes"
    result = CliRunner().invoke(app, ["train", "gan", "--data-root", str(faces_root), "--out", str(out),
                                      "--epochs", "1", "--condition", "attributes", *TINY_FLAGS])
    assert result.exit_code == 0, result.stderr
    return out


# ------------------------------------------------------------------------------------------------ the networks

def test_the_networks_read_attributes_and_their_blends() -> None:
    config = GANConfig(latent_dim=8, num_classes=0, embed_dim=4, num_attributes=5, attribute_prior_size=3,
                       image_size=32, channels=3, gen_width=8, disc_width=8, upsample="nearest")
    generator, discriminator = Generator(config).eval(), Discriminator(config)
    attributes = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 1, 0, 1]], dtype=torch.uint8)
    noise = torch.randn(2, 8)
    images = generator(noise, attributes)
    assert images.shape == (2, 3, 32, 32)
    halfway = generator(noise, torch.full((2, 5), 0.5))  # a blend is an input like any other
    assert not torch.allclose(halfway, images)
    logits, read = split_logits(discriminator(images, attributes))
    assert logits.shape == (2,) and read.shape == (2, 5)  # real/fake, then one logit per attribute
    assert generator.attribute_prior.shape == (3, 5) and generator.attribute_prior.dtype == torch.uint8
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        generator(noise, torch.zeros(2))  # digit-style labels are not attributes


def test_a_gan_is_conditioned_on_classes_or_attributes_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        GANConfig(num_classes=10, num_attributes=5, attribute_prior_size=1)
    with pytest.raises(ValueError, match="attribute_prior_size"):
        GANConfig(num_classes=0, num_attributes=5, attribute_prior_size=0)


def test_drawn_attributes_agree_with_what_is_asked_and_come_from_real_faces() -> None:
    from latentctl.latent.sampling import draw_attributes

    prior = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=torch.uint8)
    drawn = draw_attributes(prior, range(40), {0: 1})
    assert (drawn[:, 0] == 1).all()
    assert {tuple(row) for row in drawn.int().tolist()} == {(1, 1, 0), (1, 0, 0)}  # both real rows, nothing else
    assert torch.equal(draw_attributes(prior, [17], {0: 1})[0], drawn[17])  # seed S+i alone draws image i's
    nobody = draw_attributes(prior, range(5), {0: 1, 2: 1})  # no real row has both: the closest, then set
    assert (nobody[:, 0] == 1).all() and (nobody[:, 2] == 1).all()


# ------------------------------------------------------------------------------------------------ train gan

def test_train_writes_a_model_that_records_its_attributes(attribute_model: Path, faces_root: Path) -> None:
    from latentctl.data.prepare import ensure_prepared

    config = store.read_config(attribute_model, "gan")
    assert config.labels == list(RENDERED_ATTRIBUTES)  # every attribute the synthetic set draws
    assert config.architecture["num_attributes"] == 29 and config.architecture["embed_dim"] > 0
    assert config.training["dataset"]["attributes"] == config.labels
    assert config.training["options"]["attribute_loss"] > 0
    prior = weights(attribute_model)["attribute_prior"]  # rows of real training faces' attributes
    prepared = ensure_prepared(faces_root, 32)
    _, table = prepared.select("train")
    columns = [prepared.attribute_names.index(name) for name in config.labels]
    real_rows = {tuple(row) for row in table[:, columns].tolist()}
    assert prior.shape[1] == 29 and all(tuple(row) in real_rows for row in prior.tolist())
    grid = Image.open(attribute_model / "samples" / "epoch_0001.png")
    assert grid.size[0] == grid.size[1]  # 10 x 10


def test_resume_continues_bit_for_bit(cli, faces_root: Path, tmp_path: Path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ("--data-root", faces_root, *TINY_FLAGS, "--condition", "attributes", "--attribute", "Male",
              "--attribute", "eyeglasses")
    assert cli("train", "gan", *common, "--out", straight, "--epochs", "2").exit_code == 0
    assert cli("train", "gan", *common, "--out", split, "--epochs", "1").exit_code == 0
    resumed = cli("train", "gan", "--resume", "--data-root", faces_root, "--out", split, "--epochs", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert "conditioned on 2 attributes" in resumed.stderr
    assert store.read_config(split, "gan").labels == ["Male", "Eyeglasses"]  # as asked, CelebA's spelling
    for name, tensor in weights(straight).items():
        assert torch.equal(tensor, weights(split)[name]), name


def test_the_attribute_loss_can_be_turned_off(cli, faces_root: Path, tmp_path: Path) -> None:
    result = cli("train", "gan", "--data-root", faces_root, "--out", tmp_path / "m", "--epochs", "1", *TINY_FLAGS,
                 "--condition", "attributes", "--attribute", "Smiling", "--attribute-loss", "0", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["training"]["options"]["attribute_loss"] == 0.0


@pytest.mark.parametrize(("flags", "code", "message"), [
    (("--condition", "attributes", "--attribute", "eyglasses"), 1, "did you mean Eyeglasses"),
    (("--condition", "attributes", "--attribute", "Attractive"), 1, "does not draw Attractive"),
    (("--attribute", "Male"), 2, "--condition attributes"),
    (("--condition", "labels"), 2, "labels"),
])
def test_bad_attribute_choices_are_refused(cli, faces_root: Path, tmp_path: Path, flags, code, message) -> None:
    result = cli("train", "gan", "--data-root", faces_root, "--out", tmp_path / "m", *TINY_FLAGS, *flags)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m" / store.CONFIG_FILE).exists()


# ------------------------------------------------------------------------------------- sample and interpolate

def test_sample_with_and_without_attributes(cli, attribute_model: Path, tmp_path: Path) -> None:
    result = cli("sample", "--model", attribute_model, "--n", "9", "--with", "male", "--without", "No_Beard",
                 "--json", tmp_path / "men.png")
    assert result.exit_code == 0, result.stderr
    images = json.loads(result.stdout)["images"]
    assert len(images) == 9 and Image.open(tmp_path / "men.png").size == (208, 208)  # 3 x 3 of 64 px (32 px x 2)
    for image in images:
        assert "Male" in image["attributes"] and "No_Beard" not in image["attributes"]


def test_an_image_is_redrawn_alone_from_its_seed(cli, attribute_model: Path, tmp_path: Path) -> None:
    many = cli("sample", "--model", attribute_model, "--n", "4", "--individual", "--json", tmp_path / "many")
    one = cli("sample", "--model", attribute_model, "--n", "1", "--seed", "2", "--individual", "--json",
              tmp_path / "one")
    third, alone = json.loads(many.stdout)["images"][2], json.loads(one.stdout)["images"][0]
    assert third["attributes"] == alone["attributes"]
    assert Image.open(third["path"]).tobytes() == Image.open(alone["path"]).tobytes()


@pytest.mark.parametrize(("flags", "message"), [
    (("--digit", "3"), "no digits"),
    (("--with", "Male", "--without", "male"), "both with and without"),
])
def test_sample_refuses_options_an_attribute_model_cannot_take(cli, attribute_model: Path, tmp_path: Path, flags,
                                                                message) -> None:
    result = cli("sample", "--model", attribute_model, *flags, tmp_path / "x.png")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_an_unknown_attribute_names_the_models_own(cli, attribute_model: Path, tmp_path: Path) -> None:
    result = cli("sample", "--model", attribute_model, "--with", "Attractive", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "unknown attribute 'Attractive'" in result.stderr and "conditioned on all 29" in result.stderr


def test_with_on_a_model_without_attributes_is_a_usage_error(cli, tiny_model: Path, tmp_path: Path) -> None:
    result = cli("sample", "--model", tiny_model, "--with", "Male", tmp_path / "x.png")
    assert result.exit_code == 2 and "not conditioned on attributes" in result.stderr


def test_interpolate_keeps_each_rows_attributes(cli, attribute_model: Path, tmp_path: Path) -> None:
    result = cli("interpolate", "--model", attribute_model, "--rows", "3", "--frames", "5", "--with", "Eyeglasses",
                 "--json", tmp_path / "walk.gif")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert len(rows) == 3 and all("Eyeglasses" in row["attributes"] for row in rows)
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 8  # forth and back: 5 + 3


def test_a_pushed_card_says_how_to_ask_for_attributes(attribute_model: Path) -> None:
    from latentctl import hub

    generator, config = store.load_model(attribute_model, "gan")
    card = hub.model_card(config, "ada/faces", "sample.png")
    assert "conditioned on 29 face attributes" in card and "--with Eyeglasses" in card
    assert "attribute-conditional" in card
    assert Image.open(io.BytesIO(hub.sample_png(generator, config))).size[0] > 0


@pytest.mark.parametrize("method", ["label", "gradient"])
def test_steer_turns_the_attribute_input_from_a_mix_without_it(cli, attribute_model: Path, classifier_32: Path,
                                                                tmp_path: Path, method: str) -> None:
    result = cli("steer", "--model", attribute_model, "--classifier", classifier_32, "--to", "eyeglasses",
                 "--away-from", "Smiling", "--method", method, "--n", "3", "--frames", "4", "--steps", "6",
                 "--json", tmp_path / "steer.png")
    assert result.exit_code == 0, result.stderr
    faces = json.loads(result.stdout)["faces"]
    assert len(faces) == 3 and all(len(face["frames"]) == 4 for face in faces)
    for face in faces:
        assert "Eyeglasses" not in face["attributes"]["from"] and "Eyeglasses" in face["attributes"]["to"]
        assert "Smiling" in face["attributes"]["from"] and "Smiling" not in face["attributes"]["to"]
        kept = set(face["attributes"]["from"]) - {"Smiling"}
        assert kept == set(face["attributes"]["to"]) - {"Eyeglasses"}  # every other input held
    assert Image.open(tmp_path / "steer.png").size[0] > Image.open(tmp_path / "steer.png").size[1]


def test_the_label_method_moves_the_attribute_input_alone(attribute_model: Path, classifier_32: Path) -> None:
    from latentctl.latent.steer import SteerSettings, Target, steer

    generator, config = store.load_model(attribute_model, "gan")
    classifier, classifier_config = store.load_model(classifier_32, "classifier")
    noise = torch.randn(2, config.latent_dim)
    start = torch.zeros(2, 29)
    end = start.clone()
    end[:, config.labels.index("Male")] = 1
    target = [Target(classifier_config.labels.index("Male"), "Male", +1)]
    result = steer(generator, classifier, noise, target, SteerSettings(method="label", steps=4, frames=5),
                   attributes=(start, end))
    assert torch.equal(result.latents[:, 0], result.latents[:, -1])  # the noise never moves
    male = result.attributes[:, :, config.labels.index("Male")]
    assert torch.allclose(male, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).expand(2, -1))
    with pytest.raises(ValueError, match="label method"):
        steer(generator, classifier, noise, target, SteerSettings(method="label"))


def test_until_stops_the_gradient_where_the_face_reads_the_target(attribute_model: Path,
                                                                    classifier_32: Path) -> None:
    from latentctl.latent.steer import SteerSettings, Target, steer

    generator, config = store.load_model(attribute_model, "gan")
    classifier, classifier_config = store.load_model(classifier_32, "classifier")
    column = classifier_config.labels.index("Male")
    noise = torch.randn(6, config.latent_dim)
    start = torch.zeros(6, 29)
    end = start.clone()
    end[:, config.labels.index("Male")] = 1
    settings = SteerSettings(steps=8, frames=9, until=0.51)
    result = steer(generator, classifier, noise, [Target(column, "Male", +1)], settings, attributes=(start, end))
    turned = result.attributes[:, :, config.labels.index("Male")]
    assert torch.all(turned[:, 1:] >= turned[:, :-1])  # the input only turns one way
    read = result.probabilities[:, :, column] > 0.51
    for face in range(6):  # a face stops changing at the first frame that reads the target
        if read[face].any():
            first = int(read[face].nonzero()[0])
            assert torch.equal(result.latents[face, first], result.latents[face, -1])
            assert torch.allclose(turned[face, first:], turned[face, first])
        else:
            assert turned[face, -1] == 1


def test_turned_attributes_hold_the_others_or_let_them_follow(attribute_model: Path) -> None:
    from latentctl.latent.attributes import correlated_shift, turned_attributes
    from latentctl.latent.steer import Target

    generator, config = store.load_model(attribute_model, "gan")
    male, makeup = config.labels.index("Male"), config.labels.index("Heavy_Makeup")
    start = torch.zeros(3, len(config.labels))
    start[:, makeup] = 1
    towards = [Target(0, "Male", +1)]  # the classifier's column does not matter here
    held = turned_attributes(generator.attribute_prior, config.labels, towards, start)
    others = [column for column in range(len(config.labels)) if column != male]
    assert torch.equal(held[:, male], torch.ones(3)) and torch.equal(held[:, others], start[:, others])
    farther = turned_attributes(generator.attribute_prior, config.labels, towards, start, reach=2.5)
    assert torch.allclose(farther[:, male], torch.full((3,), 2.5)) and farther[0, makeup] == 1
    followed = turned_attributes(generator.attribute_prior, config.labels, towards, start, keep_others=False)
    shift = correlated_shift(generator.attribute_prior, {male: 1})
    assert shift[makeup] < -0.3  # men wear make-up far less often in the data
    assert torch.allclose(followed[:, makeup], (1 + shift[makeup]).expand(3))
    assert torch.all((followed >= 0) & (followed <= 1))
    further = turned_attributes(generator.attribute_prior, config.labels, towards, start, keep_others=False, reach=1.5)
    assert torch.allclose(further[:, makeup], (1 + 1.5 * shift[makeup]).clamp(0, 1).expand(3))
    away = turned_attributes(generator.attribute_prior, config.labels, [Target(0, "Male", -1)], 1 - start, reach=2)
    assert torch.allclose(away[:, male], torch.full((3,), -1.0))
    with pytest.raises(ValueError, match="reach"):
        turned_attributes(generator.attribute_prior, config.labels, towards, start, reach=0.5)


@pytest.mark.parametrize(("model", "method", "message"), [
    ("attribute", "direction", "conditioned on attributes"),
    ("plain", "label", "takes no attributes"),
    ("plain", "gradient --reach 2", "takes no attributes"),
])
def test_a_method_the_model_cannot_take_is_a_usage_error(cli, attribute_model: Path, face_model: Path,
                                                          classifier_32: Path, tmp_path: Path, model: str,
                                                          method: str, message: str) -> None:
    folder = attribute_model if model == "attribute" else face_model
    result = cli("steer", "--model", folder, "--classifier", classifier_32, "--to", "Male", "--method",
                 *method.split(), tmp_path / "x.png")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_label_method_refuses_an_attribute_the_model_was_not_given(cli, faces_root: Path,
                                                                       classifier_32: Path, tmp_path: Path) -> None:
    only_male = tmp_path / "male"
    assert cli("train", "gan", "--data-root", faces_root, "--out", only_male, "--epochs", "1", *TINY_FLAGS,
               "--condition", "attributes", "--attribute", "Male").exit_code == 0
    result = cli("steer", "--model", only_male, "--classifier", classifier_32, "--to", "Smiling", "--method",
                 "label", tmp_path / "x.png")
    assert result.exit_code == 1 and "not conditioned on Smiling" in result.stderr


def test_eval_steer_scores_gradient_and_label_on_an_attribute_model(cli, attribute_model: Path,
                                                                     classifier_32: Path, faces_root: Path,
                                                                     tmp_path: Path) -> None:
    judge = tmp_path / "judge"
    assert cli("train", "classifier", "--data-root", faces_root, "--out", judge, "--epochs", "1", "--size", "32",
               "--width", "8", "--seed", "1").exit_code == 0
    result = cli("eval", "steer", "--model", attribute_model, "--classifier", classifier_32, "--judge", judge,
                 "--attribute", "Male", "--faces", "3", "--steps", "4", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {(score["method"], score["keep_others"]) for score in json.loads(result.stdout)["scores"]}
    assert rows == {("gradient", 0.4), ("gradient", 0.0), ("label", 0.4), ("label", 0.0)}


# ------------------------------------------------------------------------------------------- what it draws

@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory: pytest.TempPathFactory):
    """2,000 synthetic faces; a GAN conditioned on their attributes and, on the same faces, an attribute
    classifier trained on its own as the judge (about a minute on two CPU cores)."""
    from typer.testing import CliRunner

    from latentctl.cli import app

    root = tmp_path_factory.mktemp("faces2k")
    synth_faces(root, 2000, seed=7)
    runner = CliRunner()
    gan, judge = root / "gan", root / "judge"
    for command in (["train", "gan", "--out", str(gan), "--epochs", "12", "--size", "32", "--gen-width", "16",
                     "--disc-width", "16", "--batch-size", "32", "--condition", "attributes", "--no-augment"],
                    ["train", "classifier", "--out", str(judge), "--epochs", "4", "--size", "32", "--width", "16",
                     "--seed", "3"]):
        result = runner.invoke(app, [*command, "--data-root", str(root), "--device", "cpu"])
        assert result.exit_code == 0, result.stderr
    return gan, judge


@pytest.mark.slow
@pytest.mark.parametrize("attribute", ["Male", "Blond_Hair"])  # glasses need more training: docs/training-gan.md
def test_faces_asked_for_an_attribute_show_it(trained_pair, tmp_path: Path, cli, attribute: str) -> None:
    gan, judge = trained_pair
    judge_model, judge_config = store.load_model(judge, "classifier")
    column = judge_config.labels.index(attribute)
    shown = {}
    for flag in ("--with", "--without"):
        out = tmp_path / flag.strip("-")
        assert cli("sample", "--model", gan, "--n", "48", flag, attribute, "--individual", out).exit_code == 0
        pictures = torch.stack([torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)
                                for path in sorted(out.glob("*.png"))]).float() / 127.5 - 1
        with torch.no_grad():
            shown[flag] = (torch.sigmoid(judge_model(pictures)[:, column]) > 0.5).float().mean().item()
    assert shown["--with"] >= 0.8 and shown["--without"] <= 0.2, shown


@pytest.mark.slow
def test_the_label_method_turns_faces_male(trained_pair, cli) -> None:
    gan, judge = trained_pair  # with the label method the classifier only reads the frames
    result = cli("steer", "--model", gan, "--classifier", judge, "--to", "Male", "--method", "label", "--n", "24",
                 "--frames", "2", "--steps", "1", "--json", gan.parent / "male.png")
    assert result.exit_code == 0, result.stderr
    last = [face["frames"][-1]["targets"]["Male"] for face in json.loads(result.stdout)["faces"]]
    first = [face["frames"][0]["targets"]["Male"] for face in json.loads(result.stdout)["faces"]]
    # measured: 18 of 24 past 0.5 at the last frame; the faces keep the lipstick and make-up of their mix
    assert sum(p > 0.5 for p in last) >= 0.6 * len(last) and sum(p < 0.5 for p in first) >= 0.8 * len(first)


def test_faces_that_miss_the_target_are_told_to_turn_the_input_further(cli, attribute_model: Path,
                                                                        classifier_32: Path, tmp_path: Path) -> None:
    # a one-epoch model draws no glasses: every face misses them, whatever the method
    advice = {"label": "try --reach 2 or --method gradient", "gradient": "a weaker --keep-others, --reach 2"}
    for method, hint in advice.items():
        result = cli("steer", "--model", attribute_model, "--classifier", classifier_32, "--to", "Eyeglasses",
                     "--method", method, "--n", "4", "--frames", "2", "--steps", "2", "--json", tmp_path / "x.png")
        assert result.exit_code == 0 and json.loads(result.stdout)["not_reached"] == {"Eyeglasses": 4}
        assert "4 of 4 faces did not reach Eyeglasses" in result.stderr and hint in result.stderr, result.stderr


def test_eval_steer_refuses_reach_on_a_model_without_attributes(cli, face_model: Path, classifier_32: Path,
                                                                 tmp_path: Path) -> None:
    result = cli("eval", "steer", "--model", face_model, "--classifier", classifier_32, "--judge",
                 tmp_path / "judge", "--reach", "2")
    assert result.exit_code == 2 and "takes no attributes to turn" in result.stderr
