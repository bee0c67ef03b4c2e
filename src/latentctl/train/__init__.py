"""Training loops and their defaults. Importing this package does not import torch (the CLI reads these).

The face GAN's optimiser, for ``latentctl train gan`` and the demo: the seed projects' Adam (lr 1e-3,
betas (0.5, 0.99)), kept steady by an R1 penalty of weight 1. Against DCGAN's lr 2e-4 and betas (0.5, 0.999)
without R1 it drew sharper faces, and glasses and hats about twice as often, in the same steps
(docs/training-gan.md, "Defaults"). A face GAN conditioned on attributes also weighs its auxiliary attribute
classifier by ``FACE_ATTRIBUTE_LOSS`` (docs/training-gan.md, "Conditioned on attributes").
"""

FACE_LR = 1e-3
FACE_BETAS = (0.5, 0.99)
FACE_R1 = 1.0
FACE_ATTRIBUTE_LOSS = 5.0
