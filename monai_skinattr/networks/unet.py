"""The thesis' basic U-Net, built from MONAI's BasicUNet blocks with an explicit encoder/decoder split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.basic_unet import Down, TwoConv
from torch import nn

from .base import EncoderDecoder, SkipDecoder, StagedEncoder, init_weights

__all__ = ["UNet"]

#: Conv3x3-BN-ReLU settings of every MONAI ``TwoConv`` block of the thesis' networks.
ACT, NORM = ("relu", {"inplace": True}), "batch"


class _UpConv(nn.Sequential):
    """
    The thesis' up-convolution: bilinear x2, a 2x2 convolution and ReLU. The 2x2 convolution keeps the size with one
    zero row and column after the map and none before: what ``padding="same"`` of the thesis' reference code
    (``UpConvBlock``), PyTorch and Keras do for an even kernel, written out.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
            nn.ZeroPad2d((0, 1, 0, 1)),
            nn.Conv2d(in_channels, out_channels, kernel_size=2),
            nn.ReLU(inplace=True),
        )


class _UpLevel(nn.Module):
    """A decoder level: up-convolution to half the channels, concatenated with the skip, two Conv3x3-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = _UpConv(in_channels, in_channels // 2)
        self.convs = TwoConv(2, in_channels // 2 + skip_channels, out_channels, ACT, NORM, bias=False)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([self.up(x), skip], dim=1))


class UNet(EncoderDecoder):
    """
    The thesis' basic U-Net (section 2.1): a 3x3 convolutional stem to ``features[0]`` (64) channels, then five
    encoder levels of two Conv3x3-BN-ReLU each (64, 128, 256, 512, 1024 channels, the first block of a level changing
    the channels) with 2x2 max pooling between them; four decoder levels, each an up-convolution (bilinear x2, 2x2
    convolution, ReLU; half the channels) concatenated with the encoder level of that scale and two
    Conv3x3-BN-ReLU; a 1x1 convolution head. He-normal initialisation (:func:`init_weights`). ``net.encoder(x)``
    returns the five levels' features (what decoder-only training, pretraining and the robustness metric use).
    Height and width must be divisible by 16.

    With 3 input channels the encoder has 18,884,096 parameters + 7,936 BatchNorm statistics (the thesis' 19.9 M is
    the encoder with its 1000-class pretraining head: 19,909,096) and costs 14,884,208,640
    multiply-accumulates at 224 x 224: the thesis' "14.9 GFLOPs" (Table 2.4) counts multiply-accumulates, as He et
    al. and Liu et al. do; ``torch.utils.flop_counter`` reports twice that (29.77 GFLOPs).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import UNet

        net = UNet(in_channels=1, out_channels=4)
        print(net(torch.rand(1, 1, 64, 64)).shape)  # torch.Size([1, 4, 64, 64])
        print([f.shape[1] for f in net.encoder(torch.rand(1, 1, 64, 64))])  # [64, 128, 256, 512, 1024]

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        features: channels of the stem and the five encoder levels' outputs (the stem has ``features[0]``);
            e.g. ``(4, 8, 8, 8, 8)`` for tests.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, features: Sequence[int] = (64, 128, 256, 512, 1024)
    ):
        stem = nn.Conv2d(in_channels, features[0], kernel_size=3, padding=1)
        super().__init__(
            StagedEncoder(
                [nn.Sequential(stem, TwoConv(2, features[0], features[0], ACT, NORM, bias=False))]
                + [Down(2, features[i - 1], features[i], ACT, NORM, bias=False) for i in range(1, len(features))],
                features,
            ),
            SkipDecoder(
                [_UpLevel(features[i], features[i - 1], features[i - 1]) for i in range(len(features) - 1, 0, -1)],
                features[0],
            ),
            nn.Conv2d(features[0], out_channels, kernel_size=1),
        )
        init_weights(self, "he")
