"""The digit judge: a small CNN that reads which digit an image shows, trained on the dataset's own images only
(``latentctl.eval.digits``), so it shares nothing with the GAN it scores."""

from __future__ import annotations

import torch
from torch import nn


class DigitClassifier(nn.Module):
    """A small CNN: images (N, C, 28, 28) in [-1, 1] -> logits (N, classes)."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
