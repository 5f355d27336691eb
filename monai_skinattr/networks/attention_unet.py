"""ResNet50 encoder + attention-gated U-Net decoder (the thesis' "ResNet50 Attention U-Net")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets.basic_unet import TwoConv
from torch import nn

from .base import EncoderDecoder, init_weights
from .encoders import ResNet50Encoder
from .unet import ACT, NORM, _UpConv, _UpLevel

__all__ = ["AttentionGate", "ResNet50AttentionUNet"]


class AttentionGate(nn.Module):
    """
    The thesis' additive attention gate (Eq. 1.1, Figure 1.3): alpha = up(sigmoid(Psi(ReLU(W_Q(Q) + W_K(K))))),
    computed at the resolution of the gating signal (the coarse decoder map ``x`` entering the level) and then
    upsampled to the skip's resolution, where it multiplies the skip ``V``. As the thesis' reference code
    (``AttentionBlock``, after Oktay et al.): ``Q`` = Conv1x1-BN-ReLU of ``x``, ``W_Q`` = Conv1x1-BN, ``K`` = the skip
    through a 2x2 stride-2 Conv-BN (the thesis' "1x1 convolution and downsampling" as one learnt step),
    intermediate channels = the gating channels, ``Psi`` = Conv1x1-BN to one coefficient per skip channel, nearest
    upsampling.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import AttentionGate

        gate = AttentionGate(gate_channels=32, skip_channels=16)
        x, skip = torch.rand(1, 32, 8, 8), torch.rand(1, 16, 16, 16)
        print(gate.coefficients(x, skip).shape)  # torch.Size([1, 16, 8, 8])
        print(gate(x, skip).shape)  # torch.Size([1, 16, 16, 16])

    Args:
        gate_channels: channels of the gating signal ``x``.
        skip_channels: channels of the skip (and of the attention coefficients).
    """

    def __init__(self, gate_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.query = nn.Sequential(
            Convolution(2, gate_channels, gate_channels, kernel_size=1, act="relu", norm="batch"),
            Convolution(2, gate_channels, gate_channels, kernel_size=1, act=None, norm="batch"),
        )
        self.key = Convolution(2, skip_channels, gate_channels, 2, kernel_size=2, padding=0, act=None, norm="batch")
        self.psi = Convolution(2, gate_channels, skip_channels, kernel_size=1, act="sigmoid", norm="batch")

    def coefficients(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The attention coefficients at the coarse resolution of ``x`` (before upsampling)."""
        return self.psi(F.relu(self.query(x) + self.key(skip)))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        alpha = F.interpolate(self.coefficients(x, skip), size=[skip.shape[-2], skip.shape[-1]], mode="nearest")
        return alpha * skip


class _GatedLevel(_UpLevel):
    """A decoder level whose skip is gated by the level's coarse input before the concatenation."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, skip_channels, out_channels)
        self.gate = AttentionGate(in_channels, skip_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([self.up(x), self.gate(x, skip)], dim=1))


class _AttentionDecoder(nn.Module):
    def __init__(self, encoder_channels: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        skips = list(encoder_channels[:-1])[::-1]
        if len(channels) < len(skips):
            raise ValueError(f"need at least {len(skips)} decoder levels, got {len(channels)}.")
        gated, plain, prev = [], [], encoder_channels[-1]
        for i, ch in enumerate(channels):
            if i < len(skips):
                gated.append(_GatedLevel(prev, skips[i], ch))
            else:
                plain.append(nn.Sequential(_UpConv(prev, prev // 2), TwoConv(2, prev // 2, ch, ACT, NORM, bias=False)))
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
    The thesis' ResNet50 Attention U-Net (section 2.1): torchvision's ResNet50 (skips after the 7x7 stem and after
    levels 1-3: 64, 256, 512, 1024 channels) and a five-level U-Net decoder of 256/128/64/32/16 channels. Each level
    up-convolves its input (bilinear x2, 2x2 convolution, ReLU; half the channels), concatenates the encoder skip of
    that scale gated by an :class:`AttentionGate` (coefficients computed from the level's coarse input, then
    upsampled), and applies two Conv3x3-BN-ReLU; the last level has no skip. 1x1 head. He-normal initialisation
    (:func:`init_weights`) except where ``encoder_weights`` are loaded. Height and width must be divisible by 32.
    58,443,905 parameters for one output channel (+ 73,792 BatchNorm statistics), 23,508,032 of them the encoder's.

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
        drop_path: stochastic depth rate of the encoder (see :class:`ResNet50Encoder`); the thesis pretrains with 0.1.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        encoder_weights: str | Path | None = None,
        drop_path: float = 0.0,
    ) -> None:
        encoder = ResNet50Encoder(in_channels, encoder_weights, drop_path=drop_path)
        decoder = _AttentionDecoder(encoder.out_channels, decoder_channels)
        super().__init__(encoder, decoder, nn.Conv2d(decoder.out_channels, out_channels, kernel_size=1))
        for part in (self.decoder, self.head) if encoder_weights is not None else (self,):
            init_weights(part, "he")
