"""FC-DenseNet ("The One Hundred Layers Tiramisu", Jegou et al. 2017) as an image-to-image network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FCDenseNet"]


class _DenseLayer(nn.Sequential):
    def __init__(self, in_channels: int, growth: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, growth, kernel_size=3, padding=1),
            nn.Dropout2d(dropout),
        )


class _DenseBlock(nn.Module):
    """``n`` dense layers; returns the input with all new maps (down path) or only the new maps (up path)."""

    def __init__(self, in_channels: int, n: int, growth: int, dropout: float, only_new: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_DenseLayer(in_channels + i * growth, growth, dropout) for i in range(n)])
        self.only_new = only_new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new: list[torch.Tensor] = []
        for layer in self.layers:
            out = layer(x)
            x = torch.cat([x, out], dim=1)
            new.append(out)
        return torch.cat(new, dim=1) if self.only_new else x


class _TransitionDown(nn.Sequential):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1),
            nn.Dropout2d(dropout),
            nn.MaxPool2d(2),
        )


class FCDenseNet(nn.Module):
    """
    Fully convolutional DenseNet for image-to-image prediction with a linear output layer (the deep-input-transfer
    translation network). The default is FC-DenseNet103: 48 first-conv filters, growth 16, dense blocks of
    4, 5, 7, 10, 12 layers down, a 15-layer bottleneck, 12, 10, 7, 5, 4 up (9.4 M parameters counting BatchNorm
    running statistics, as the paper reports, for 11 classes). The input is
    padded to a multiple of 32 and the output cropped back, so output size equals input size.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import FCDenseNet

        net = FCDenseNet(in_channels=3, out_channels=3)
        print(net(torch.rand(1, 3, 50, 70)).shape)  # torch.Size([1, 3, 50, 70])

    Args:
        in_channels: input channels.
        out_channels: output channels (no activation).
        down_blocks: layers per dense block on the way down (the way up mirrors it).
        bottleneck_layers: layers of the bottleneck block.
        growth_rate: feature maps each dense layer adds.
        first_channels: filters of the first 3x3 convolution.
        dropout: dropout after every convolution.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_blocks: Sequence[int] = (4, 5, 7, 10, 12),
        bottleneck_layers: int = 15,
        growth_rate: int = 16,
        first_channels: int = 48,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.first = nn.Conv2d(in_channels, first_channels, kernel_size=3, padding=1)
        channels, skips = first_channels, []
        self.down, self.transitions = nn.ModuleList(), nn.ModuleList()
        for n in down_blocks:
            self.down.append(_DenseBlock(channels, n, growth_rate, dropout, only_new=False))
            channels += n * growth_rate
            skips.append(channels)
            self.transitions.append(_TransitionDown(channels, dropout))
        self.bottleneck = _DenseBlock(channels, bottleneck_layers, growth_rate, dropout, only_new=True)
        prev_new = bottleneck_layers * growth_rate
        self.ups, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for i, n in enumerate(reversed(down_blocks)):
            self.ups.append(
                nn.ConvTranspose2d(prev_new, prev_new, kernel_size=3, stride=2, padding=1, output_padding=1)
            )
            cin = prev_new + skips[-1 - i]
            last = i == len(down_blocks) - 1
            self.up_blocks.append(_DenseBlock(cin, n, growth_rate, dropout, only_new=not last))
            prev_new = n * growth_rate if not last else cin + n * growth_rate
        self.final = nn.Conv2d(prev_new, out_channels, kernel_size=1)
        self.multiple = 2 ** len(down_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
        x = self.first(x)
        skips: list[torch.Tensor] = []
        for block, down in zip(self.down, self.transitions):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        n = len(skips)
        for i, (up, block) in enumerate(zip(self.ups, self.up_blocks)):
            x = block(torch.cat([up(x), skips[n - 1 - i]], dim=1))
        return self.final(x)[..., :h, :w]
