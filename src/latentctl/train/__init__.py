"""Training loops and their defaults. Importing this package does not import torch (the CLI reads these).

The face GAN's optimiser is the seed projects' Adam kept steady by an R1 penalty; docs/training-gan.md
("Defaults", "Conditioned on attributes") measures it against DCGAN's."""

FACE_LR = 1e-3
FACE_BETAS = (0.5, 0.99)
FACE_R1 = 1.0
FACE_ATTRIBUTE_LOSS = 5.0
# Below this many training images `train gan` applies DiffAugment (latentctl.train.augment) by default. Its gains
# are large from a hundred to ~10k images (100-shot sets, FFHQ 1k-5k, CIFAR-10 at 10-20%) and small at CIFAR-10's
# full 50k; CelebA (162k) and the default 20k synthetic faces train as before.
AUGMENT_BELOW = 10_000
