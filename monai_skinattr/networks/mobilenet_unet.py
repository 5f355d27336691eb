"""U-Net with a torchvision MobileNetV2 encoder (the ISIC 2016 MobileNetV2 method)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

from .base import EncoderDecoder, SkipDecoder
from .encoders import MobileNetV2Encoder

__all__ = ["MobileNetV2Encoder", "MobileNetV2UNet"]


class _UpStage(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        conv = {"act": "relu", "norm": "batch", "bias": False, "kernel_size": 3}
        self.convs = nn.Sequential(
            Convolution(2, out_channels + skip_channels, out_channels, dilation=2, **conv),
            Convolution(2, out_channels, out_channels, **conv),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


def _mobilenet_decoder(encoder_channels: Sequence[int], channels: Sequence[int]) -> SkipDecoder:
    skips = list(encoder_channels[:-1])[::-1]
    ins = [encoder_channels[-1], *channels[:-1]]
    stages = [_UpStage(cin, skip, ch) for cin, skip, ch in zip(ins, skips, channels, strict=True)]
    return SkipDecoder(stages, channels[-1])


class MobileNetV2UNet(EncoderDecoder):
    """
    MobileNetV2 encoder (torchvision) with a U-Net decoder: per level a x2 transposed convolution, concatenation
    with the encoder stage of that scale (four skips), a dilated (2) and a plain Conv3x3-BN-ReLU; a 1x1 head at
    1/2 resolution and bilinear resizing to the input size, so any input size of at least 32 works.
    :meth:`set_trainable` gives the method's fine-tuning schedule: encoder frozen, last stage trainable, or all.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import MobileNetV2UNet

        net = MobileNetV2UNet(out_channels=1).set_trainable("frozen")
        print(net(torch.rand(1, 3, 128, 128)).shape)  # torch.Size([1, 1, 128, 128])

    Args:
        in_channels: input channels (a new first convolution when not 3).
        out_channels: output channels (logits).
        decoder_channels: channels of the four decoder levels.
        encoder_weights: optional local torchvision MobileNetV2 state dict (classifier keys ignored).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        decoder_channels: Sequence[int] = (96, 32, 24, 16),
        encoder_weights: str | Path | None = None,
    ) -> None:
        encoder = MobileNetV2Encoder(in_channels, encoder_weights)
        decoder = _mobilenet_decoder(encoder.out_channels, decoder_channels)
        super().__init__(encoder, decoder, nn.Conv2d(decoder.out_channels, out_channels, kernel_size=1))
        self.frozen_stages = 0

    def set_trainable(self, mode: str) -> MobileNetV2UNet:
        """``"frozen"`` (encoder frozen), ``"last"`` (only the last encoder stage trains) or ``"all"``."""
        frozen = {"frozen": 5, "last": 4, "all": 0}.get(mode)
        if frozen is None:
            raise ValueError(f"mode must be 'frozen', 'last' or 'all', got '{mode}'.")
        self.frozen_stages = frozen
        for i, stage in enumerate(self.encoder.stages):
            for p in stage.parameters():
                p.requires_grad_(i >= frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> MobileNetV2UNet:
        super().train(mode)
        for stage in self.encoder.stages[: self.frozen_stages]:
            stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.decoder(self.encoder(x)))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
