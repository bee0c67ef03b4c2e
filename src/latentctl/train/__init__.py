"""Training loops and their defaults. Importing this package does not import torch (the CLI reads these).

The face GAN's optimiser is the seed projects' Adam kept steady by an R1 penalty; docs/training-gan.md
("Defaults", "Conditioned on attributes") measures it against DCGAN's."""

FACE_LR = 1e-3
FACE_BETAS = (0.5, 0.99)
FACE_R1 = 1.0
FACE_ATTRIBUTE_LOSS = 5.0
