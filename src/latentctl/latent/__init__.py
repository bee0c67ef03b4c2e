"""Working in a generator's latent space: sampling, walks, attribute directions and steering.

Kept free of heavy imports: the CLI reads the steering defaults below while building ``--help``. Why each
value was chosen, with the measurements: docs/steering.md ("Why strength 8", "Smoothed views, measured").
"""

DEFAULT_STEPS = 40  # moves from the first frame to the last (``--steps``)
DEFAULT_FRAMES = 8  # snapshots per face, the first unchanged (``--frames``)
DEFAULT_STRENGTH = 8.0  # latent distance walked (``--strength``); 12 took the direction method off the shell
DEFAULT_KEEP_OTHERS = 0.4  # weight of holding the other attributes (``--keep-others``); 0.3 and 0.5 measured
DEFAULT_VIEWS = 4  # faces the gradient reads per face and step (``--views``): the face and 3 nearby latents
DISCOVERY_METHODS = ("sefa", "ganspace")  # how `directions discover` finds directions (latent.components)
DIRECTION_FITS = ("class-means", "interfacegan")  # how the direction method fits its boundaries (latent.directions)
DEFAULT_FIT = "class-means"  # docs/steering.md ("A better fitted direction") measures both
