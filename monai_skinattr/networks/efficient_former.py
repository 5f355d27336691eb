"""Transformer U-Net with efficient attention and Inter-scale Context Fusion (ISCF), for skin lesions.

Method 3 of the project (Eskandari & Lumpp, arXiv 2310.13604 / MIDL 2023): a hierarchical encoder of efficient
transformer blocks on overlapping patch embeddings; ISCF fuses the attention contexts of the encoder stages into
one and lets each stage's queries read it, refining the skip features before the decoder joins them; the decoder
expands patches back to full resolution. The ablation switches of :class:`EffFormerISCF` (``skip``,
``fused_scales``) give the paper's plain skip concatenation and its 1/2/3 fused scale pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import EncoderDecoder, StagedEncoder

__all__ = ["EfficientAttention", "InterScaleContextFusion", "EffFormerISCF"]


class _LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class EfficientAttention(nn.Module):
    """
    Efficient attention (Shen et al.): ``softmax_c(Q) ... (softmax_n(K)^T V)``, linear in the number of tokens.
    Keys are normalised over the tokens, queries over the channels; the context ``softmax_n(K) V^T`` is a small
    ``d_k x d_v`` matrix per head. :meth:`context_and_query` exposes both for ISCF.

    Args:
        channels: input and output channels.
        key_channels: channels of keys and queries.
        value_channels: channels of values.
        heads: number of heads (splitting the key and value channels).
        reproject: end with a 1x1 convolution back to ``channels``; ``False`` for uses (ISCF) that only take
            :meth:`context_and_query` and would leave it untrained.
    """

    def __init__(
        self, channels: int, key_channels: int, value_channels: int, heads: int = 1, reproject: bool = True
    ) -> None:
        super().__init__()
        if key_channels % heads or value_channels % heads:
            raise ValueError(
                f"key ({key_channels}) and value ({value_channels}) channels must divide by heads ({heads})."
            )
        self.keys = nn.Conv2d(channels, key_channels, 1)
        self.queries = nn.Conv2d(channels, key_channels, 1)
        self.values = nn.Conv2d(channels, value_channels, 1)
        self.reprojection = nn.Conv2d(value_channels, channels, 1) if reproject else nn.Identity()
        self.heads = heads

    def context_and_query(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per head: context (B, heads, d_k, d_v) and normalised queries (B, heads, d_k, N)."""
        b, _, h, w = x.shape
        k = self.keys(x).reshape(b, self.heads, -1, h * w).softmax(dim=-1)
        q = self.queries(x).reshape(b, self.heads, -1, h * w).softmax(dim=-2)
        v = self.values(x).reshape(b, self.heads, -1, h * w)
        return k @ v.transpose(-2, -1), q

    @staticmethod
    def attend(context: torch.Tensor, query: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Attended values ``context^T @ query`` as a (B, heads * d_v, H, W) map."""
        out = context.transpose(-2, -1) @ query
        return out.reshape(out.shape[0], -1, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context, query = self.context_and_query(x)
        return self.reprojection(self.attend(context, query, x.shape[-2], x.shape[-1]))


class _MixFFN(nn.Module):
    """Linear -> 3x3 depthwise conv -> GELU -> linear (SegFormer's Mix-FFN), on (B, C, H, W)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.dw(self.fc1(x))))


class _EfficientBlock(nn.Module):
    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm1 = _LayerNorm2d(channels)
        self.attn = EfficientAttention(channels, channels, channels, heads)
        self.norm2 = _LayerNorm2d(channels)
        self.ffn = _MixFFN(channels, 4 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _Stage(nn.Module):
    """Overlapping patch embedding (strided conv with a larger kernel), LayerNorm, efficient blocks, LayerNorm."""

    def __init__(self, in_channels: int, channels: int, kernel: int, stride: int, depth: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_channels, channels, kernel, stride=stride, padding=kernel // 2)
        self.norm_in = _LayerNorm2d(channels)
        self.blocks = nn.Sequential(*[_EfficientBlock(channels, heads) for _ in range(depth)])
        self.norm_out = _LayerNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_out(self.blocks(self.norm_in(self.embed(x))))


class InterScaleContextFusion(nn.Module):
    """
    ISCF: every stage's features are mapped to a common width, their efficient-attention contexts (one small
    ``d x d`` matrix per stage) are weighted by a squeeze-excitation over the scales and merged into one context,
    and each stage's queries read that fused context; the result, mapped back to the stage's width, is added to
    the stage's features. Returns the refined features, one per stage. Works for any number of scales >= 1 (with
    one scale the stage's own context, re-weighted, is read back by its queries).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import InterScaleContextFusion

        iscf = InterScaleContextFusion([8, 16])
        out = iscf([torch.rand(1, 8, 16, 16), torch.rand(1, 16, 8, 8)])
        print([o.shape for o in out])  # [torch.Size([1, 8, 16, 16]), torch.Size([1, 16, 8, 8])]

    Args:
        channels: channels of each fused stage (one entry per scale, at least one).
        dim: common width of the fused context (default: the widest stage).
    """

    def __init__(self, channels: Sequence[int], dim: int | None = None) -> None:
        super().__init__()
        if len(channels) < 1:
            raise ValueError("InterScaleContextFusion needs at least one scale (channels is empty).")
        dim = max(channels) if dim is None else dim
        n = len(channels)
        self.maps = nn.ModuleList([nn.Conv2d(c, dim, 1) for c in channels])
        self.attns = nn.ModuleList([EfficientAttention(dim, dim, dim, reproject=False) for _ in channels])
        self.back = nn.ModuleList([nn.Conv2d(dim, c, 1) for c in channels])
        self.excite = nn.Sequential(nn.Linear(n, n), nn.ReLU(inplace=True), nn.Linear(n, n), nn.Sigmoid())
        self.merge = nn.Conv2d(n, 1, 1)
        self.scales = n

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != self.scales:
            raise ValueError(f"InterScaleContextFusion expects {self.scales} feature maps, got {len(features)}.")
        contexts: list[torch.Tensor] = []
        queries: list[torch.Tensor] = []
        for i, (project, attn) in enumerate(zip(self.maps, self.attns)):
            context, query = attn.context_and_query(project(features[i]))
            contexts.append(context[:, 0])
            queries.append(query)
        stacked = torch.stack(contexts, dim=1)  # (B, scales, d, d)
        weights = self.excite(stacked.mean(dim=(-2, -1)))
        fused = self.merge(stacked * weights[:, :, None, None])  # (B, 1, d, d)
        out: list[torch.Tensor] = []
        for i, back in enumerate(self.back):
            h, w = features[i].shape[-2], features[i].shape[-1]
            out.append(features[i] + back(EfficientAttention.attend(fused, queries[i], h, w)))
        return out


class _Expand(nn.Module):
    """Patch expanding on (B, C, H, W): 1x1 to s*s*C_out, pixel shuffle by s, LayerNorm."""

    def __init__(self, channels: int, out_channels: int, scale: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, out_channels * scale * scale, 1, bias=False)
        self.norm = _LayerNorm2d(out_channels)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.pixel_shuffle(self.proj(x), self.scale))


def _iscf_encoder(in_channels: int, dims: Sequence[int], depths: Sequence[int], heads: int) -> StagedEncoder:
    ins = [in_channels, *dims[:-1]]
    stages = [
        _Stage(ins[i], dims[i], 7 if i == 0 else 3, 4 if i == 0 else 2, depths[i], heads) for i in range(len(dims))
    ]
    return StagedEncoder(stages, dims)


class _ISCFDecoder(nn.Module):
    """
    Patch-expanding decoder. With ``skip="iscf"`` the ``fused_scales`` shallowest stage features are refined by
    :class:`InterScaleContextFusion` and the deeper ones pass through unchanged; with ``skip="concat"`` no ISCF is
    built and every stage feature is joined raw.
    """

    def __init__(self, dims: Sequence[int], skip: str = "iscf", fused_scales: int | None = None) -> None:
        super().__init__()
        fused_scales = len(dims) if fused_scales is None else fused_scales
        self.iscf: InterScaleContextFusion | None = (
            InterScaleContextFusion(dims[:fused_scales]) if skip == "iscf" else None
        )
        self.fused_scales = fused_scales
        levels = list(range(len(dims) - 2, -1, -1))
        self.ups = nn.ModuleList([_Expand(dims[i + 1], dims[i], 2) for i in levels])
        self.fuse = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(2 * dims[i], dims[i], 1), _LayerNorm2d(dims[i])) for i in levels]
        )
        self.final = _Expand(dims[0], dims[0], 4)
        self.out_channels = dims[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        refined = features
        if self.iscf is not None:
            refined = self.iscf(features[: self.fused_scales]) + features[self.fused_scales :]
        x = refined[-1]
        n = len(refined)
        for i, (up, fuse) in enumerate(zip(self.ups, self.fuse)):
            x = fuse(torch.cat([up(x), refined[n - 2 - i]], dim=1))
        return self.final(x)


class EffFormerISCF(EncoderDecoder):
    """
    Efficient-attention transformer U-Net with Inter-scale Context Fusion. Encoder: an overlapping 7x7/stride-4
    patch embedding, then 3x3/stride-2 ones, each stage ``depths[i]`` efficient transformer blocks (efficient
    attention + Mix-FFN, pre-LayerNorm). :class:`InterScaleContextFusion` refines the stage features; the decoder
    expands patches x2, joins the refined skip (concatenation + linear fusion), and ends with a x4 patch expanding
    and a 1x1 head. Outputs logits (train with BCE); height and width must be divisible by ``4 * 2**(stages-1)``
    (16 with three stages: 224 x 224 and 384 x 384 both work).

    Ablation switches (the paper's "ISCF vs skip concatenation" and "1/2/3 fused scale pairs"); their defaults
    give the full model, unchanged:

    - ``skip="concat"`` builds no ISCF module: the decoder joins the raw encoder features (plain U-Net skip
      concatenation, fewer parameters); ``fused_scales`` is then only validated.
    - ``fused_scales=k`` (with ``skip="iscf"``) fuses the contexts of the ``k`` *shallowest* (highest-resolution)
      stages, ``dims[:k]``; the deeper stages, the bottleneck included, pass through ISCF untouched and are
      joined raw as with ``"concat"``. The fused context width is the widest fused stage, ``max(dims[:k])``.
      The paper's summary does not say which scale pairs come first; the shallow ones are chosen because their
      skips carry the widest encoder-decoder semantic gap that ISCF is meant to close, and because the
      ``k = 1`` variant then still refines a skip the decoder concatenates (the deepest stage is the bottleneck,
      not a skip).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffFormerISCF

        net = EffFormerISCF(in_channels=3, out_channels=1)
        print(net(torch.rand(1, 3, 224, 224)).shape)  # torch.Size([1, 1, 224, 224])

        # ablations: plain skip concatenation, and ISCF over the two shallowest stages only
        concat = EffFormerISCF(skip="concat")
        two_scales = EffFormerISCF(skip="iscf", fused_scales=2)

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        dims: channels of the encoder stages.
        depths: efficient transformer blocks per stage.
        heads: attention heads in the encoder blocks.
        skip: ``"iscf"`` (ISCF refines the skip features, the default) or ``"concat"`` (plain concatenation of
            the raw encoder features, no ISCF module).
        fused_scales: number of stages (encoder-decoder scale pairs) fused by ISCF, shallowest first,
            ``1 <= fused_scales <= len(dims)``; default 3 (every stage of the default three-stage model).

    Raises:
        ValueError: when ``dims`` and ``depths`` differ in length or have fewer than two entries, when ``skip``
            is neither ``"iscf"`` nor ``"concat"``, or when ``fused_scales`` is not an integer in
            ``[1, len(dims)]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        dims: Sequence[int] = (128, 320, 512),
        depths: Sequence[int] = (2, 2, 2),
        heads: int = 1,
        skip: str = "iscf",
        fused_scales: int = 3,
    ) -> None:
        if len(dims) != len(depths) or len(dims) < 2:
            raise ValueError(f"dims and depths need the same length >= 2, got {dims} and {depths}.")
        if skip not in ("iscf", "concat"):
            raise ValueError(f"skip must be 'iscf' or 'concat', got {skip!r}.")
        if isinstance(fused_scales, bool) or not isinstance(fused_scales, int) or not 1 <= fused_scales <= len(dims):
            raise ValueError(
                f"fused_scales must be an integer in [1, len(dims)] = [1, {len(dims)}], got {fused_scales!r}."
            )
        super().__init__(
            _iscf_encoder(in_channels, dims, depths, heads),
            _ISCFDecoder(dims, skip, fused_scales),
            nn.Conv2d(dims[0], out_channels, kernel_size=1),
        )
        self.skip = skip
        self.fused_scales = fused_scales
        self.multiple = 4 * 2 ** (len(dims) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.multiple != 0 or x.shape[-2] % self.multiple != 0:
            raise ValueError("EffFormerISCF needs height and width divisible by 4 * 2**(stages - 1) (16 by default).")
        return self.head(self.decoder(self.encoder(x)))
