"""Pure Swin U-Net (Cao et al.) built on MONAI's Swin Transformer blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import PatchEmbed
from monai.networks.nets.swin_unetr import BasicLayer, PatchMerging
from torch import nn

from .base import EncoderDecoder

__all__ = ["SwinUNet", "SwinEncoder"]


def _channels_last(fn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return fn(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _Merge(nn.Module):
    """MONAI's patch merging (2x2 neighbours concatenated, LayerNorm, linear 4C -> 2C) on channel-first maps."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.merge = PatchMerging(dim=dim, norm_layer=nn.LayerNorm, spatial_dims=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _channels_last(self.merge, x)


class _Expand(nn.Module):
    """Patch expanding: linear C -> s*s*C_out, rearranged to s-times the resolution, LayerNorm."""

    def __init__(self, dim: int, out_dim: int, scale: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, out_dim * scale * scale, bias=False)
        self.norm = nn.LayerNorm(out_dim)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_shuffle(_channels_last(self.linear, x), self.scale)
        return _channels_last(self.norm, x)


def _swin_layer(dim: int, depth: int, heads: int, window: int) -> BasicLayer:
    return BasicLayer(dim, depth, heads, (window, window), drop_path=[0.0] * depth, qkv_bias=True, downsample=None)


class SwinEncoder(nn.Module):
    """4x4 patch embedding, then per level ``depths[i]`` Swin blocks (shifted windows) and patch merging."""

    def __init__(self, in_channels: int, embed_dim: int, depths: Sequence[int], heads: Sequence[int], window: int):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size=4, in_chans=in_channels, embed_dim=embed_dim, spatial_dims=2)
        dims = [embed_dim * 2**i for i in range(len(depths))]
        self.stages = nn.ModuleList([_swin_layer(d, n, h, window) for d, n, h in zip(dims, depths, heads, strict=True)])
        self.merges = nn.ModuleList([_Merge(d) for d in dims[:-1]])
        self.norm = nn.LayerNorm(dims[-1])
        self.out_channels = dims

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        features: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.merges):
                features.append(x)
                x = self.merges[i](x)
        features.append(_channels_last(self.norm, x))
        return features


class _SwinDecoder(nn.Module):
    def __init__(self, dims: Sequence[int], depths: Sequence[int], heads: Sequence[int], window: int) -> None:
        super().__init__()
        self.first = _Expand(dims[-1], dims[-2])
        levels = list(range(len(dims) - 2, -1, -1))
        self.fuse = nn.ModuleList([nn.Linear(2 * dims[i], dims[i]) for i in levels])
        self.stages = nn.ModuleList([_swin_layer(dims[i], depths[i], heads[i], window) for i in levels])
        self.ups = nn.ModuleList([_Expand(dims[i], dims[i - 1]) for i in levels[:-1]])
        self.norm = nn.LayerNorm(dims[0])
        self.final = _Expand(dims[0], dims[0], scale=4)
        self.out_channels = dims[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.first(features[-1])
        n = len(features)
        for i, (fuse, stage) in enumerate(zip(self.fuse, self.stages)):
            x = _channels_last(fuse, torch.cat([x, features[n - 2 - i]], dim=1))
            x = stage(x)
            if i < len(self.ups):
                x = self.ups[i](x)
        return self.final(_channels_last(self.norm, x))


class SwinUNet(EncoderDecoder):
    """
    Pure Swin U-Net: 4x4 patch embedding to ``embed_dim`` (96), four levels of two Swin Transformer blocks with
    window 7 and shifted windows (MONAI's ``BasicLayer``), patch merging between levels; a symmetric decoder of
    patch expanding, skip concatenation + linear fusion and Swin blocks; a final x4 patch expanding and a 1x1 head.
    Height and width must be divisible by 32. Export with ``torch.jit.trace`` (MONAI's Swin blocks use einops).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import SwinUNet

        net = SwinUNet(in_channels=1, out_channels=4)
        print(net(torch.rand(1, 1, 224, 224)).shape)  # torch.Size([1, 4, 224, 224])

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        embed_dim: channels after patch embedding (doubles per level).
        depths: Swin blocks per level.
        num_heads: attention heads per level.
        window_size: attention window (shrinks automatically on small maps).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
    ) -> None:
        encoder = SwinEncoder(in_channels, embed_dim, depths, num_heads, window_size)
        decoder = _SwinDecoder(encoder.out_channels, depths, num_heads, window_size)
        super().__init__(encoder, decoder, nn.Conv2d(embed_dim, out_channels, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 != 0 or x.shape[-2] % 32 != 0:
            raise ValueError("SwinUNet needs height and width divisible by 32 (e.g. 224x224).")
        return self.head(self.decoder(self.encoder(x)))
