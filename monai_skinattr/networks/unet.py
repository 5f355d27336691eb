"""The thesis' basic U-Net, built from MONAI's BasicUNet blocks with an explicit encoder/decoder split."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets.basic_unet import Down, TwoConv, UpCat
from torch import nn

from .base import EncoderDecoder, SkipDecoder, StagedEncoder

__all__ = ["UNet"]


class UNet(EncoderDecoder):
    """
    The thesis' basic U-Net: a 3x3 Conv-BN-ReLU pair to 64 channels, then four max-pool levels doubling to 1024,
    a transposed-convolution decoder with skip concatenation and two Conv-BN-ReLU per level, 1x1 head. Built
    from MONAI's ``BasicUNet`` blocks (``TwoConv``, ``Down``, ``UpCat``) but with the encoder/decoder split
    (``net.encoder(x)`` returns the five levels' features) that decoder-only training and the robustness
    metric need. Height and width must be divisible by 16.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import UNet

        net = UNet(in_channels=1, out_channels=4)
        print(net(torch.rand(1, 1, 64, 64)).shape)  # torch.Size([1, 4, 64, 64])

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        features: channels of the five encoder levels.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, features: Sequence[int] = (64, 128, 256, 512, 1024)
    ):
        act, norm = ("relu", {"inplace": True}), "batch"
        super().__init__(
            StagedEncoder(
                [TwoConv(2, in_channels, features[0], act, norm, bias=False)]
                + [Down(2, features[i - 1], features[i], act, norm, bias=False) for i in range(1, len(features))],
                features,
            ),
            SkipDecoder(
                [
                    UpCat(2, features[i], features[i - 1], features[i - 1], act, norm, bias=False, halves=True)
                    for i in range(len(features) - 1, 0, -1)
                ],
                features[0],
            ),
            nn.Conv2d(features[0], out_channels, kernel_size=1),
        )
