"""U-shape and Link-shape networks in the topology TATL used (Keras ``segmentation_models``), any registered encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

from .base import EncoderDecoder
from .encoders import EfficientNetEncoder, get_encoder

__all__ = ["EfficientNetEncoder", "UNetDecoder", "LinkNetDecoder", "EffUNet", "EffLinkNet"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> Convolution:
    return Convolution(2, in_channels, out_channels, kernel_size=kernel_size, act="relu", norm="batch", bias=False)


class UNetDecoder(nn.Module):
    """
    U-shape decoder: per stage ×2 nearest upsampling, concatenation with the skip of that scale (if any), then two
    Conv3x3-BN-ReLU with ``channels[i]`` filters.
    """

    def __init__(self, encoder_channels: Sequence[int], channels: Sequence[int] = (256, 128, 64, 32, 16)) -> None:
        super().__init__()
        skips = list(encoder_channels[:-1])[::-1]
        self.n_skips = len(skips)
        blocks, prev = [], encoder_channels[-1]
        for i, ch in enumerate(channels):
            cin = prev + (skips[i] if i < len(skips) else 0)
            blocks.append(nn.Sequential(_conv_bn_relu(cin, ch, 3), _conv_bn_relu(ch, ch, 3)))
            prev = ch
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = prev

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for i, block in enumerate(self.blocks):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if i < self.n_skips:
                x = torch.cat([x, features[self.n_skips - 1 - i]], dim=1)
            x = block(x)
        return x


class _LinkBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = in_channels // 4
        self.reduce = _conv_bn_relu(in_channels, mid, 1)
        self.conv = _conv_bn_relu(mid, mid, 3)
        self.expand = _conv_bn_relu(mid, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.conv(F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")))


class LinkNetDecoder(nn.Module):
    """
    Link-shape decoder: per stage Conv1x1-BN-ReLU to C/4, ×2 nearest upsampling, Conv3x3-BN-ReLU, Conv1x1-BN-ReLU
    to the skip's channels, then addition of the skip; the last stage (no skip) ends with ``last_channels``.
    """

    def __init__(self, encoder_channels: Sequence[int], last_channels: int = 16) -> None:
        super().__init__()
        skips = list(encoder_channels[:-1])[::-1]
        self.n_skips = len(skips)
        blocks, prev = [], encoder_channels[-1]
        for out in [*skips, last_channels]:
            blocks.append(_LinkBlock(prev, out))
            prev = out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = prev

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < self.n_skips:
                x = x + features[self.n_skips - 1 - i]
        return x


class _EffNet(EncoderDecoder):
    """The registered encoder ``encoder``, ``decoder(encoder.out_channels)`` and a 3x3 head with bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        encoder: str,
        encoder_weights: str | Path | None,
        decoder: Callable[[list[int]], nn.Module],
    ) -> None:
        enc = get_encoder(encoder, in_channels, encoder_weights)
        if len(enc.out_channels) != 5:
            raise ValueError(f"encoder '{encoder}' gives {len(enc.out_channels)} feature maps, need 5 (strides 2-32).")
        dec = decoder(enc.out_channels)
        super().__init__(enc, dec, nn.Conv2d(dec.out_channels, out_channels, kernel_size=3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 != 0 or x.shape[-2] % 32 != 0:
            raise ValueError("U/Link networks need height and width divisible by 32 (e.g. 384x512).")
        return self.head(self.decoder(self.encoder(x)))


class EffUNet(_EffNet):
    """
    EfficientNet U-Net as TATL used it (Keras ``segmentation_models.Unet("efficientnetb0")``): skips from the
    expand activations of blocks 2a/3a/4a/6a, decoder 256/128/64/32/16 with two Conv3x3-BN-ReLU per stage,
    3x3 head with bias. Outputs logits; height and width must be multiples of 32. With b0 and one output channel
    it has 10,115,501 parameters counting BatchNorm running statistics (10,071,501 trainable), TATL Table 7.
    Any registered encoder (:func:`~monai_skinattr.networks.list_encoders`) can replace EfficientNet-b0.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffUNet

        net = EffUNet(in_channels=3, out_channels=1)
        print(net(torch.rand(1, 3, 384, 512)).shape)  # torch.Size([1, 1, 384, 512])
        net = EffUNet(encoder="resnet50")  # the same decoder on a ResNet50

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        encoder: a registered encoder name, ``"efficientnet-b0"`` by default.
        decoder_channels: filters of the five decoder stages.
        encoder_weights: optional local weight file for the encoder, in that encoder's format (for EfficientNets
            the ImageNet file MONAI downloads, see :class:`~monai_skinattr.networks.EfficientNetEncoder`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        encoder: str = "efficientnet-b0",
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        encoder_weights: str | Path | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, encoder, encoder_weights, lambda ch: UNetDecoder(ch, decoder_channels)
        )


class EffLinkNet(_EffNet):
    """
    EfficientNet LinkNet as TATL used it (Keras ``segmentation_models.Linknet("efficientnetb0")``): the same
    encoder and taps as :class:`EffUNet`, additive skips, 3x3 head with bias. With b0 and one output channel it
    has 6,096,333 parameters counting BatchNorm running statistics (6,049,549 trainable), TATL Table 7.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffLinkNet

        net = EffLinkNet(in_channels=3, out_channels=1)
        print(net(torch.rand(1, 3, 64, 96)).shape)  # torch.Size([1, 1, 64, 96])

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        encoder: a registered encoder name, ``"efficientnet-b0"`` by default.
        last_channels: filters of the last decoder stage.
        encoder_weights: optional local weight file for the encoder, in that encoder's format (for EfficientNets
            the ImageNet file MONAI downloads, see :class:`~monai_skinattr.networks.EfficientNetEncoder`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        encoder: str = "efficientnet-b0",
        last_channels: int = 16,
        encoder_weights: str | Path | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, encoder, encoder_weights, lambda ch: LinkNetDecoder(ch, last_channels)
        )
