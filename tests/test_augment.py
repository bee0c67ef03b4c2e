"""DiffAugment (latentctl.train.augment): differentiable, shape- and range-keeping, the same op on real and fake
images given the same draws, and kept by a resumed training run."""

from __future__ import annotations

import torch

from latentctl.train.augment import Augmentation, apply, augment, draw


def _images(seed: int = 0, count: int = 8, side: int = 32) -> torch.Tensor:
    return torch.rand(count, 3, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_augmentation_keeps_shape_dtype_and_the_range_of_images():
    images = _images()
    out = augment(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= -1 and out.max() <= 1
    assert not torch.equal(out, images)


def test_augmentation_is_differentiable_so_the_generator_gets_a_gradient():
    images = _images().requires_grad_(True)
    augment(images, torch.Generator().manual_seed(2)).square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert torch.isfinite(images.grad).all()


def test_the_same_draws_augment_real_and_fake_batches_alike():
    real, fake = _images(3), _images(4)
    fake[:4] = real[:4]  # the first four images are the same in both batches
    drawn = draw(8, 32, torch.Generator().manual_seed(5))
    assert torch.equal(apply(real, drawn)[:4], apply(fake, drawn)[:4])
    assert not torch.equal(apply(real, drawn)[4:], apply(fake, drawn)[4:])
    # the same generator state gives the same op; the next draw is another
    generator = torch.Generator().manual_seed(6)
    state = generator.get_state()
    first = augment(real, generator)
    second = augment(real, generator)
    generator.set_state(state)
    assert torch.equal(augment(real, generator), first) and not torch.equal(first, second)


def test_translation_moves_the_picture_and_fills_with_grey():
    image = _images(7, count=1)
    ones = torch.ones(1, 1, 1, 1)
    shifted = Augmentation(brightness=0 * ones, saturation=ones, contrast=ones, shift=torch.tensor([[2, -3]]),
                           cutout=torch.tensor([[0, 0]]))
    out = apply(image, shifted)
    # outside the cut-out corner (16x16 at the top left) pixel (r, c) is the image's (r - 2, c + 3)
    assert torch.allclose(out[..., 16:, 16:29], image[..., 14:30, 19:32])
    assert torch.equal(out[..., 16:, 29:], torch.zeros_like(out[..., 16:, 29:]))  # uncovered on the right
    assert torch.equal(out[..., :16, :16], torch.zeros(1, 3, 16, 16))  # the cut-out square


def test_cutout_centres_fall_anywhere_so_the_middle_of_a_face_is_mostly_seen():
    # DiffAugment draws the square's centre uniformly over the image and cuts off what falls outside; a square
    # kept wholly inside would cover the middle of a 32-pixel face in 16 of 17 draws
    ones = torch.ones(4000, 1, 1, 1)
    draws = draw(4000, 32, torch.Generator().manual_seed(0))
    cut = apply(torch.ones(4000, 1, 32, 32), Augmentation(brightness=0 * ones, saturation=ones, contrast=ones,
                                                          shift=torch.zeros(4000, 2, dtype=torch.long),
                                                          cutout=draws.cutout)) == 0  # (N, 1, S, S)
    covered = cut.float().mean(0)[0]  # (S, S) how often each pixel is cut
    assert 0.19 < covered[16, 16] < 0.28  # (16/33)^2 = 0.235
    assert 0.05 < covered[0, 0] < 0.10  # (9/33)^2 = 0.074
    assert int(cut[:, 0].sum((1, 2)).max()) == 16 * 16 and int(cut[:, 0].sum((1, 2)).min()) == 8 * 8
    corner = Augmentation(brightness=0 * ones[:1], saturation=ones[:1], contrast=ones[:1],
                          shift=torch.zeros(1, 2, dtype=torch.long), cutout=torch.tensor([[-8, -8]]))
    assert torch.equal((apply(torch.ones(1, 1, 32, 32), corner) == 0)[0, 0].nonzero().amax(0), torch.tensor([7, 7]))


def test_the_trainer_augments_only_when_asked_and_records_it(tmp_path):
    from conftest import TINY, random_digits
    from latentctl.train.gan import GANTrainer, TrainOptions

    trained = {}
    for augmented in (False, True):
        trainer = GANTrainer(TINY, TrainOptions(epochs=1, batch_size=64, augment=augmented), random_digits(),
                             tmp_path / str(augmented), torch.device("cpu"))
        trainer.train()
        trained[augmented] = trainer
        assert trainer.model_config().training["options"]["augment"] is augmented
    generator = dict(trained[False].ema.named_parameters())
    assert any(not torch.equal(generator[name], value) for name, value in trained[True].ema.named_parameters())
