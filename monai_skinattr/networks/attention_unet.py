"""ResNet50 encoder + attention-gated U-Net decoder (the thesis' "ResNet50 Attention U-Net")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets.attentionunet import AttentionBlock
from torch import nn

from .base import EncoderDecoder
from .encoders import ResNet50Encoder

__all__ = ["ResNet50Encoder", "ResNet50AttentionUNet"]


def _two_convs(in_channels: int, out_channels: int) -> nn.Sequential:
    conv = {"act": "relu", "norm": "batch", "bias": False, "kernel_size": 3}
    return nn.Sequential(
        Convolution(2, in_channels, out_channels, **conv), Convolution(2, out_channels, out_channels, **conv)
    )


class _AttentionStage(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.gate = AttentionBlock(2, f_int=max(skip_channels // 2, 1), f_g=in_channels, f_l=skip_channels)
        self.convs = _two_convs(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.convs(torch.cat([x, self.gate(x, skip)], dim=1))


class _AttentionDecoder(nn.Module):
    def __init__(self, encoder_channels: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        skips = list(encoder_channels[:-1])[::-1]
        if len(channels) < len(skips):
            raise ValueError(f"need at least {len(skips)} decoder levels, got {len(channels)}.")
        gated, plain, prev = [], [], encoder_channels[-1]
        for i, ch in enumerate(channels):
            if i < len(skips):
                gated.append(_AttentionStage(prev, skips[i], ch))
            else:
                plain.append(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), _two_convs(prev, ch)))
            prev = ch
        self.gated = nn.ModuleList(gated)
        self.plain = nn.Sequential(*plain)
        self.n_skips = len(skips)
        self.out_channels = prev

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for i, stage in enumerate(self.gated):
            x = stage(x, features[self.n_skips - 1 - i])
        return self.plain(x)


class ResNet50AttentionUNet(EncoderDecoder):
    """
    ResNet50 encoder with a five-level decoder (256/128/64/32/16 channels): each level upsamples x2, gates the
    encoder skip of that scale with MONAI's additive ``AttentionBlock`` (gating signal = the upsampled decoder
    features), concatenates, and applies two Conv3x3-BN-ReLU. The last level has no skip. 1x1 head. Height and
    width must be divisible by 32.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import ResNet50AttentionUNet

        net = ResNet50AttentionUNet(in_channels=3, out_channels=1)
        print(net(torch.rand(1, 3, 64, 64)).shape)  # torch.Size([1, 1, 64, 64])

    Args:
        in_channels: input channels (a new first convolution when not 3).
        out_channels: output channels (logits).
        decoder_channels: channels of the five decoder levels.
        encoder_weights: optional local torchvision ResNet50 state dict (``fc`` keys ignored).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        encoder_weights: str | Path | None = None,
    ) -> None:
        encoder = ResNet50Encoder(in_channels, encoder_weights)
        decoder = _AttentionDecoder(encoder.out_channels, decoder_channels)
        super().__init__(encoder, decoder, nn.Conv2d(decoder.out_channels, out_channels, kernel_size=1))
