"""Deep input transfer at test time: the translator Φ in front of the trained segmenter, as one network."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TranslateThenSegment"]


class TranslateThenSegment(nn.Module):
    """
    ``segmenter(translator(x))``: the image-to-image network Φ estimates the perturbed image ``I + Δ`` and the
    trained segmenter segments it (the paper's test path, Figure 1 bottom). The segmenter stays frozen and in eval
    mode (its BatchNorm statistics are not updated) so the network can be trained end to end through Φ alone,
    which is the paper's "pre-processor without the GP constraint" baseline. ``return_translation=True`` returns
    ``Φ(x)`` only (for looking at the translated images).

    .. code-block:: python

        import torch
        from monai_skinattr.apps.input_transfer import TranslateThenSegment
        from monai_skinattr.networks import FCDenseNet, UNet

        net = TranslateThenSegment(
            FCDenseNet(3, 3, down_blocks=(2, 2), bottleneck_layers=2, growth_rate=4, first_channels=8),
            UNet(in_channels=3, out_channels=2, features=(4, 8, 16, 32, 64)),
        )
        print(net(torch.rand(1, 3, 64, 64)).shape)  # torch.Size([1, 2, 64, 64])
    """

    def __init__(self, translator: nn.Module, segmenter: nn.Module, return_translation: bool = False) -> None:
        super().__init__()
        self.translator = translator
        self.segmenter = segmenter
        self.return_translation = return_translation
        for p in self.segmenter.parameters():
            p.requires_grad_(False)
        self.segmenter.eval()

    def train(self, mode: bool = True) -> TranslateThenSegment:
        super().train(mode)
        self.segmenter.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        translated = self.translator(x)
        if self.return_translation:
            return translated
        return self.segmenter(translated)
