"""Working in a generator's latent space: sampling, walks, attribute directions and steering.

Kept free of heavy imports: the CLI reads the defaults below while building ``--help``.
"""

# The distance steering walks by default (``--strength``), for the commands, the Python API and the demo.
# Measured against 12 on the synthetic faces (docs/steering.md): 12 reached Smiling with the gradient method
# on 71% of 48 faces instead of 69%, but the direction method, which has no term keeping the latent on its
# Gaussian shell, walked far enough off it that keeping the other attributes no longer kept them (Male:
# 0.299 changed with and without, on the 6-epoch GAN).
DEFAULT_STRENGTH = 8.0

# How hard the gradient method holds the other attributes by default (``--keep-others``; the direction
# method projects for any weight above 0). Measured on the synthetic faces with the smoothed views
# (docs/steering.md, 96 faces on the demo's 12- and 6-epoch GANs): 0.3 turned 96-100% of faces male and
# 89-92% smiling, the others changing 0.171-0.173 and 0.094-0.096; 0.4 turned 96-97% and 91-92%, the
# others changing 0.145-0.147 and 0.084-0.085; 0.5 held them a little more (0.126-0.130, 0.077-0.078)
# but reached Smiling on only 88-89%.
DEFAULT_KEEP_OTHERS = 0.4

# Faces the gradient method reads per face and step (``--views``): the face and three from nearby latents.
# Measured on the synthetic faces (docs/steering.md): 1 view reached Smiling on 83% of 48 faces as the judge
# reads them while the steering classifier said 98%; 4 reached 94% (100%); 8 were no better (94%).
DEFAULT_VIEWS = 4
