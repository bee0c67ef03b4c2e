"""Steering math on toy networks whose answers are known: a linear generator read by a linear classifier.

Attribute 1 is built to be correlated with attribute 0 (like beards with Male in CelebA), so a move that
only chases attribute 0 drags attribute 1 along, and a disentangled one must not.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from latentctl.errors import LatentctlError, UsageError
from latentctl.latent.attributes import match_attribute, normalise
from latentctl.latent.directions import confident_bounds, fit_boundaries, fit_directions, linear_svm
from latentctl.latent.sampling import load_latents, noise_for_seeds, save_latents
from latentctl.latent.steer import SteerSettings, Target, smoothed_logits, steer

LATENT, SIZE, ATTRIBUTES = 12, 8, 4


class ToyClassifier(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.linear.weight.data.copy_(weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(1))


def toy_pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """A linear generator (latent -> 1x8x8 image, no tanh) and a classifier whose attribute 1 leans on 0."""
    rng = torch.Generator().manual_seed(seed)
    generator = nn.Sequential(nn.Linear(LATENT, SIZE * SIZE, bias=False), nn.Unflatten(1, (1, SIZE, SIZE)))
    nn.init.normal_(generator[0].weight, 0, 1 / LATENT**0.5, generator=rng)
    weight = torch.randn(ATTRIBUTES, SIZE * SIZE, generator=rng) / SIZE
    weight[1] = 0.8 * weight[0] + 0.6 * weight[1]  # correlated with attribute 0
    return generator.eval(), ToyClassifier(weight).eval()


@pytest.mark.parametrize("typed", ["male", "MALE", "Male", "ma_le"])
def test_attribute_names_match_ignoring_case_and_underscores(typed):
    assert match_attribute(typed, ["Smiling", "Male"]) == "Male"
    assert normalise("5_o_Clock_Shadow") == normalise("5 o clock shadow") == "5oclockshadow"


def test_unknown_attribute_suggests_the_closest_name():
    with pytest.raises(LatentctlError) as caught:
        match_attribute("eyeglases", ["Eyeglasses", "Male", "Smiling"])
    assert "eyeglases" in caught.value.message
    assert "did you mean Eyeglasses" in caught.value.hint and "latentctl attributes" in caught.value.hint


def test_gradient_steering_raises_the_target_logit_of_every_face():
    generator, classifier = toy_pair()
    noise = noise_for_seeds(range(6), LATENT)
    result = steer(generator, classifier, noise, [Target(0, "zero", +1)],
                   SteerSettings(steps=20, strength=3.0, keep_others=0.0, prior=0.0, views=1, frames=5))
    assert result.images.shape == (6, 5, 1, SIZE, SIZE) and result.latents.shape == (6, 5, LATENT)
    target = result.probabilities[:, :, 0]
    assert (target[:, -1] > target[:, 0]).all()
    assert (target.diff(dim=1) >= -1e-6).all()  # monotone along the way
    torch.testing.assert_close(result.latents[:, 0], noise)  # the first frame is the unchanged face


def test_away_from_lowers_the_target():
    generator, classifier = toy_pair()
    result = steer(generator, classifier, noise_for_seeds(range(4), LATENT), [Target(2, "two", -1)],
                   SteerSettings(steps=10, strength=2.0, views=1))
    assert (result.probabilities[:, -1, 2] < result.probabilities[:, 0, 2]).all()


def test_keep_others_holds_a_correlated_attribute_back():
    generator, classifier = toy_pair()
    noise = noise_for_seeds(range(8), LATENT)

    def drift(keep: float) -> float:
        result = steer(generator, classifier, noise, [Target(0, "zero", +1)],
                       SteerSettings(steps=30, strength=3.0, keep_others=keep, prior=0.0, views=1))
        logits = torch.logit(result.probabilities.clamp(1e-6, 1 - 1e-6))
        return (logits[:, -1, 1] - logits[:, 0, 1]).abs().mean().item()

    tangled, kept = drift(0.0), drift(5.0)
    assert kept < 0.5 * tangled


def test_prior_keeps_the_latent_near_its_starting_radius():
    generator, classifier = toy_pair()
    noise = noise_for_seeds(range(8), LATENT)

    def radius_change(prior: float) -> float:
        result = steer(generator, classifier, noise, [Target(0, "zero", +1)],
                       SteerSettings(steps=30, strength=4.0, keep_others=0.0, prior=prior, views=1))
        return (result.latents[:, -1].norm(dim=1) - noise.norm(dim=1)).abs().mean().item()

    assert radius_change(10.0) < 0.5 * radius_change(0.0)


def test_until_stops_each_face_once_its_target_is_reached():
    generator, classifier = toy_pair()
    result = steer(generator, classifier, noise_for_seeds(range(8), LATENT), [Target(0, "zero", +1)],
                   SteerSettings(steps=60, strength=12.0, keep_others=0.0, until=0.8, views=1, frames=4))
    stopped = result.steps_taken < 60
    assert stopped.any()
    assert (result.probabilities[stopped, -1, 0] >= 0.8).all()
    # a stopped face stays put: its last frames repeat
    finished = result.steps_taken <= result.frame_steps[1]
    if finished.any():
        torch.testing.assert_close(result.latents[finished, -1], result.latents[finished, -2])


def test_smoothed_views_still_steer_and_are_seeded():
    generator, classifier = toy_pair()
    noise = noise_for_seeds(range(3), LATENT)
    settings = SteerSettings(steps=8, strength=2.0, views=4, seed=3)
    first = steer(generator, classifier, noise, [Target(0, "zero", +1)], settings)
    again = steer(generator, classifier, noise, [Target(0, "zero", +1)], settings)
    torch.testing.assert_close(first.latents, again.latents)
    assert (first.probabilities[:, -1, 0] > first.probabilities[:, 0, 0]).all()
    other_seed = steer(generator, classifier, noise, [Target(0, "zero", +1)], replace(settings, seed=4))
    assert not torch.allclose(first.latents, other_seed.latents)
    # without noise the views are the face itself, and the path is the one a single view takes
    unsmoothed = steer(generator, classifier, noise, [Target(0, "zero", +1)], replace(settings, smoothing=0.0))
    single = steer(generator, classifier, noise, [Target(0, "zero", +1)], replace(settings, views=1))
    torch.testing.assert_close(unsmoothed.latents, single.latents)


def test_smoothed_logits_average_nearby_faces_and_read_the_face_itself_first():
    generator, classifier = toy_pair()
    latent = noise_for_seeds(range(5), LATENT)
    with torch.no_grad():
        own = classifier(generator(latent))
        mean, first = smoothed_logits(classifier, generator, latent, 6, 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, own)
    assert not torch.allclose(mean, own)


def test_fitted_directions_recover_a_linear_boundary():
    generator, classifier = toy_pair()
    directions = fit_directions(generator, classifier, ["a", "b", "c", "d"], LATENT, samples=2000)
    # the true normal of attribute a in latent space: classifier row through the linear generator
    truth = classifier.linear.weight[0] @ generator[0].weight  # (D,)
    cosine = torch.nn.functional.cosine_similarity(directions.normals[0], truth / truth.norm(), dim=0)
    assert cosine > 0.99
    assert (directions.quality > 0.95).all()


def test_conditional_direction_leaves_kept_attributes_unchanged():
    generator, classifier = toy_pair()
    directions = fit_directions(generator, classifier, ["a", "b", "c", "d"], LATENT, samples=2000)
    move = directions.move([(0, +1)], keep=True)
    assert move.norm().item() == pytest.approx(1.0, abs=1e-5)
    kept = torch.stack([directions.normals[i] for i in (1, 2, 3)])
    assert (kept @ move).abs().max() < 1e-4  # orthogonal to every kept direction
    noise = noise_for_seeds(range(4), LATENT)
    for keep, bound in ((True, 0.05), (False, None)):
        result = steer(generator, classifier, noise, [Target(0, "a", +1)],
                       SteerSettings(method="direction", steps=10, strength=3.0), direction=directions.move(
                           [(0, +1)], keep=keep))
        logits = torch.logit(result.probabilities.clamp(1e-6, 1 - 1e-6))
        change = (logits[:, -1, 1] - logits[:, 0, 1]).abs().max().item()
        if bound is not None:
            assert change < bound
        else:
            assert change > 0.5  # without conditioning the correlated attribute moves


def test_interfacegan_fit_recovers_a_planted_boundary_and_reports_its_held_out_accuracy():
    generator, classifier = toy_pair()
    directions = fit_directions(generator, classifier, ["a", "b", "c", "d"], LATENT, samples=4000, fit="interfacegan")
    truth = classifier.linear.weight @ generator[0].weight  # (A, D): each attribute's true normal in latent space
    cosines = torch.nn.functional.cosine_similarity(directions.normals, truth, dim=1)
    assert (cosines > 0.98).all(), cosines
    assert directions.fit == "interfacegan" and directions.confident_quality.shape == (4,)
    assert (directions.quality > 0.95).all() and (directions.confident_quality > 0.99).all()
    row = directions.boundaries([0])["a"]
    assert row["fit"] == "interfacegan" and row["accuracy_confident"] >= row["accuracy_all"] > 0.95
    assert "held-out accuracy" in directions.describe(0)


def test_interfacegan_fit_ignores_faces_read_unsurely_that_the_class_means_follow():
    # attribute 0 is a plane in latent space, but faces near it are read by a second, unrelated feature:
    # only the confident tails show the plane, and the SVM on them finds it where the class means do not
    rng = torch.Generator().manual_seed(3)
    plane, nuisance = torch.zeros(LATENT), torch.zeros(LATENT)
    plane[0], nuisance[1] = 1.0, 1.0
    latents = torch.randn(6000, LATENT, generator=rng)
    along = latents @ plane
    logits = torch.where(along.abs() > 1.0, 6 * along, latents @ nuisance + 0.1 * along)[:, None]  # (M, 1)
    means, _ = fit_boundaries(latents.double(), logits, "class-means")
    svm, _ = fit_boundaries(latents.double(), logits, "interfacegan")
    assert abs(float(svm[0] @ plane.double())) > 0.95
    assert abs(float(means[0] @ plane.double())) < 0.9


def test_confident_faces_are_the_surest_share_each_way_and_at_most_half_of_a_side():
    logits = torch.cat([torch.linspace(-5, -0.1, 90), torch.linspace(0.1, 5, 10)])[:, None]  # 10% positives
    low, high = confident_bounds(logits, share=0.2)
    assert int((logits <= low).sum()) == 20  # 20% of 100 faces, the most negative
    assert int((logits >= high).sum()) == 5  # half of the 10 positives, not 20


def test_a_balanced_linear_svm_finds_the_plane_of_a_rare_class():
    latents = torch.randn(3000, 3, generator=torch.Generator().manual_seed(1))
    normal = torch.tensor([0.6, -0.8, 0.0])
    rare = latents @ normal > 1.8  # about 4% of the points
    weights, bias = linear_svm(latents, rare, balanced=True)
    assert float(weights @ normal.double() / weights.norm()) > 0.95
    assert ((latents.double() @ weights + bias > 0) == rare).float().mean() > 0.95


def test_a_conditioned_component_is_orthogonal_to_the_kept_normals():
    generator, classifier = toy_pair()
    directions = fit_directions(generator, classifier, ["a", "b", "c", "d"], LATENT, samples=2000, fit="interfacegan")
    component = directions.normals[0] + 0.5 * directions.normals[1]  # a discovered direction, tangled with b
    move = directions.condition(component, [0], keep=True)
    kept = directions.kept_for(component, [0])
    assert kept and move.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert (directions.normals[kept] @ move).abs().max() < 1e-4
    torch.testing.assert_close(directions.condition(component, [0], keep=False), component / component.norm())


def test_an_unknown_fit_is_a_usage_error_of_its_flag():
    generator, classifier = toy_pair()
    with pytest.raises(UsageError) as caught:
        fit_directions(generator, classifier, ["a", "b", "c", "d"], LATENT, samples=200, fit="svm")
    assert caught.value.option == "--fit" and "class-means or interfacegan" in caught.value.message


def test_conditioning_skips_a_kept_direction_that_would_leave_less_than_half_the_move():
    from latentctl.latent.directions import MIN_RETAINED, AttributeDirections

    target = torch.tensor([1.0, 0.0, 0.0])
    tangled = torch.tensor([0.95, (1 - 0.95**2) ** 0.5, 0.0])  # almost the target itself (a beard for Male)
    leaning = torch.tensor([0.3, 0.0, (1 - 0.3**2) ** 0.5])
    directions = AttributeDirections(names=["target", "tangled", "leaning"],
                                     normals=torch.stack([target, tangled, leaning]), offsets=torch.zeros(3),
                                     quality=torch.ones(3), share=torch.full((3,), 0.5), samples=1000)
    assert directions.kept_for(target, [0]) == [2]  # holding "tangled" would leave 0.31 of the move
    move = directions.move([(0, +1)], keep=True)
    assert abs(move @ leaning) < 1e-5 and move @ target >= MIN_RETAINED


def test_settings_refuse_one_frame_and_more_frames_than_steps():
    with pytest.raises(ValueError):
        SteerSettings(frames=1)
    with pytest.raises(ValueError):
        SteerSettings(frames=12, steps=10)
    assert SteerSettings(frames=3, steps=10).frame_steps() == [0, 5, 10]


def test_latents_file_round_trips_and_refuses_the_wrong_size(tmp_path):
    noise = noise_for_seeds(range(3), LATENT)
    save_latents(tmp_path / "z.safetensors", noise, seeds=[0, 1, 2])
    torch.testing.assert_close(load_latents(tmp_path / "z.safetensors", LATENT), noise)
    with pytest.raises(LatentctlError, match="12-dimensional"):
        load_latents(tmp_path / "z.safetensors", 100)
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(LatentctlError):
        load_latents(tmp_path / "bad.safetensors", LATENT)
