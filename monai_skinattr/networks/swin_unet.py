"""Pure Swin U-Net (Cao et al.) built on MONAI's Swin Transformer blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import PatchEmbed
from monai.networks.nets.swin_unetr import BasicLayer, PatchMerging
from torch import nn

from .base import EncoderDecoder, init_weights

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


def _swin_layer(dim: int, depth: int, heads: int, window: int, drop_path: Sequence[float]) -> BasicLayer:
    return BasicLayer(dim, depth, heads, (window, window), drop_path=list(drop_path), qkv_bias=True, downsample=None)


def _drop_path_rates(depths: Sequence[int], drop_path: float) -> list[list[float]]:
    """Stochastic depth per block, rising linearly from 0 to ``drop_path`` over the encoder's blocks (Swin, Cao et
    al.), split by level; the decoder level of a scale reuses that scale's rates."""
    rates = torch.linspace(0, drop_path, sum(depths)).tolist()
    bounds = [sum(depths[:i]) for i in range(len(depths) + 1)]
    return [rates[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class SwinEncoder(nn.Module):
    """
    The Swin U-Net encoder (Cao et al.): 4x4 patch embedding (Conv + LayerNorm), then per level ``depths[i]`` Swin
    Transformer blocks (MONAI's ``BasicLayer``: windowed then shifted-window attention) with patch merging between
    levels, LayerNorm after the last. It returns, as Cao et al.'s ``x_downsample``, each level's *input* (the patch
    embedding at 1/4, the merged maps at 1/8 and 1/16) and the normalised output of the last level (1/32):
    ``out_channels`` = ``embed_dim`` x (1, 2, 4, 8). With the defaults it has 20,413,386 parameters (27,519,354 for
    Swin-T's depths 2/2/6/2), 21,182,386 with a 1000-class head (the thesis' 21.2 M, Table 2.4).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import SwinEncoder

        enc = SwinEncoder(in_channels=3, drop_path=0.2)  # the thesis' ImageNet pretraining rate
        print([tuple(f.shape[1:]) for f in enc(torch.rand(1, 3, 224, 224))])
        # [(96, 56, 56), (192, 28, 28), (384, 14, 14), (768, 7, 7)]

    Args:
        in_channels: input channels.
        embed_dim: channels after patch embedding (doubles per level).
        depths: Swin blocks per level.
        num_heads: attention heads per level.
        window_size: attention window. Maps that are not a multiple of it are padded window-wise (MONAI), and a map
            smaller than the window is attended to as one window without shift; 224 x 224 input with window 7
            needs neither.
        drop_path: stochastic depth rate of the last block (0 = none), active only in training mode; the rates rise
            linearly from 0 over the blocks.
    """

    def __init__(
        self,
        in_channels: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size=4, in_chans=in_channels, embed_dim=embed_dim, spatial_dims=2)
        dims = [embed_dim * 2**i for i in range(len(depths))]
        rates = _drop_path_rates(depths, drop_path)
        self.stages = nn.ModuleList(
            [_swin_layer(*args, window_size, r) for *args, r in zip(dims, depths, num_heads, rates, strict=True)]
        )
        self.merges = nn.ModuleList([_Merge(d) for d in dims[:-1]])
        self.norm = nn.LayerNorm(dims[-1])
        self.out_channels = dims

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        features: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.merges[i - 1](x)
            if i < len(self.merges):
                features.append(x)
            x = stage(x)
        features.append(_channels_last(self.norm, x))
        return features


class _SwinDecoder(nn.Module):
    def __init__(
        self, dims: Sequence[int], depths: Sequence[int], heads: Sequence[int], window: int, drop_path: float
    ) -> None:
        super().__init__()
        self.first = _Expand(dims[-1], dims[-2])
        levels = list(range(len(dims) - 2, -1, -1))
        rates = _drop_path_rates(depths, drop_path)
        self.fuse = nn.ModuleList([nn.Linear(2 * dims[i], dims[i]) for i in levels])
        self.stages = nn.ModuleList([_swin_layer(dims[i], depths[i], heads[i], window, rates[i]) for i in levels])
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
    Pure Swin U-Net (Cao et al.; the thesis, section 2.1): the :class:`SwinEncoder` (embed 96, depths 2/2/2/2, heads
    3/6/12/24, window 7), a symmetric decoder of patch expanding, skip concatenation + linear fusion and Swin blocks
    (the skips are each encoder level's input, as Cao et al.), a final x4 patch expanding and a 1x1 head. Initialised
    as the thesis (:func:`init_weights` ``"swin"``). Height and width must be divisible by 32; 224 (a multiple of
    32 x 7) needs no window padding. Export with ``torch.jit.trace`` (MONAI's Swin blocks use einops).
    27,168,900 parameters for 9 output channels (Cao et al.'s 27.17 M).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import SwinUNet

        net = SwinUNet(in_channels=1, out_channels=4)
        print(net(torch.rand(1, 1, 224, 224)).shape)  # torch.Size([1, 4, 224, 224])
        tiny = SwinUNet(in_channels=1, out_channels=4, embed_dim=12, num_heads=(1, 2, 2, 4), window_size=2)
        print(tiny(torch.rand(1, 1, 64, 64)).shape)  # torch.Size([1, 4, 64, 64])

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        embed_dim: channels after patch embedding (doubles per level).
        depths: Swin blocks per level (encoder and decoder).
        num_heads: attention heads per level.
        window_size: attention window (see :class:`SwinEncoder`).
        drop_path: stochastic depth rate (see :class:`SwinEncoder`; the decoder level of a scale uses the encoder
            level's rates). The thesis pretrains the encoder with 0.2.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        drop_path: float = 0.0,
    ) -> None:
        encoder = SwinEncoder(in_channels, embed_dim, depths, num_heads, window_size, drop_path)
        decoder = _SwinDecoder(encoder.out_channels, depths, num_heads, window_size, drop_path)
        super().__init__(encoder, decoder, nn.Conv2d(embed_dim, out_channels, kernel_size=1, bias=False))
        init_weights(self, "swin")
        # thesis §2.1: the final patch expanding, like the patch embedding, from N(0, 1 / (3 fan_in)) (Eq. 2.1,
        # gamma 1/3), not the truncated normal of the other linear layers
        nn.init.kaiming_normal_(decoder.final.linear.weight, a=5**0.5, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 != 0 or x.shape[-2] % 32 != 0:
            raise ValueError("SwinUNet needs height and width divisible by 32 (e.g. 224x224).")
        return self.head(self.decoder(self.encoder(x)))
