"""An attribute classifier: images in [-1, 1] -> one logit per face attribute (CelebA's 40).

A plain VGG-style CNN that halves the resolution per level down to the ``s x s`` base, then one linear
layer from the flattened (not pooled: faces are aligned) feature map; differentiable end to end and
without dropout, so steering can ascend its logits and ``--resume`` stays exact. ``members > 1`` averages
independently initialised networks: a deep ensemble (Lakshminarayanan et al., 2017), whose shared
response steering ascends rather than one network's quirks. Design and measurements:
docs/training-classifier.md and docs/steering.md.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from latentctl.models.configs import ClassifierConfig, base_size, register


def _conv(width_in: int, width_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(width_in, width_out, 3, stride, 1, bias=False), nn.BatchNorm2d(width_out), nn.ReLU()]


@register
class AttributeClassifier(nn.Module):
    """Maps images (N, C, S, S) in [-1, 1] to attribute logits (N, num_attributes): one network's, or the
    mean of its members' when ``config.members > 1``."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        if config.members > 1:  # each member draws its own initial weights from the global generator
            single = replace(config, members=1)
            self.members = nn.ModuleList(AttributeClassifier(single) for _ in range(config.members))
            return
        widths = self.config.widths()
        base, _ = base_size(config.image_size)
        layers = _conv(config.channels, widths[0], 2)  # (N, C, S, S) -> (N, widths[0], S/2, S/2)
        for width_in, width_out in zip(widths, widths[1:], strict=False):  # each halves the resolution
            layers += _conv(width_in, width_in, 1) + _conv(width_in, width_out, 2)
        self.features = nn.Sequential(*layers)  # -> (N, widths[-1], base, base)
        self.head = nn.Linear(widths[-1] * base * base, config.num_attributes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor, each_member: bool = False) -> torch.Tensor:
        """Return the logits (N, A), or with ``each_member`` every member's (members, N, A), as training needs."""
        if self.config.members == 1:
            logits = self.head(self.features(images).flatten(1))
            return logits[None] if each_member else logits
        logits = torch.stack([member(images) for member in self.members])
        return logits if each_member else logits.mean(0)

    @torch.no_grad()
    def start_at_base_rates(self, rates: torch.Tensor) -> None:
        """Set the head's biases so that, before training, each logit predicts its attribute's base rate (A,).

        With biases at 0 every attribute starts at probability 0.5, and the first few hundred steps go into
        learning that most attributes are rare; rare ones (hats, glasses: ~5%) then stay at "never" for
        long. Starting at the rates (the prior initialisation of Lin et al., 2017), training goes straight
        to the features.
        """
        if self.config.members > 1:
            for member in self.members:
                member.start_at_base_rates(rates)
            return
        self.head.bias.copy_(torch.logit(rates.float().clamp(1e-3, 1 - 1e-3)).to(self.head.bias.device))

