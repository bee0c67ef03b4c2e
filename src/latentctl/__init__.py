"""latentctl: controllable image generation with GANs, from the command line."""

__version__ = "0.1.0"
