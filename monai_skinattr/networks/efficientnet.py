"""EfficientNet U-shape and Link-shape networks in the topology TATL used (Keras ``segmentation_models``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets import EfficientNetBN
from torch import nn

from .base import EncoderDecoder, _state_dict

__all__ = ["EfficientNetEncoder", "UNetDecoder", "LinkNetDecoder", "EffUNet", "EffLinkNet"]


class _Stem(nn.Module):
    def __init__(self, net: EfficientNetBN) -> None:
        super().__init__()
        self.padding, self.conv, self.bn, self.act = net._conv_stem_padding, net._conv_stem, net._bn0, net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.padding(x))))


class _TapLevel(nn.Module):
    """The blocks up to a stride-2 MBConv block, returning that block's expand activation (the skip) and output."""

    def __init__(self, pre: Sequence[nn.Module], block: nn.Module) -> None:
        super().__init__()
        if not block.has_se or block.expand_ratio == 1:
            raise ValueError("a tap block must expand its input and have squeeze-excitation.")
        self.pre = nn.Sequential(*pre)
        self.block = block

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.block
        x = self.pre(x)
        skip = b._swish(b._bn0(b._expand_conv(b._expand_conv_padding(x))))
        y = b._swish(b._bn1(b._depthwise_conv(b._depthwise_conv_padding(skip))))
        s = b._se_expand(b._se_expand_padding(b._swish(b._se_reduce(b._se_reduce_padding(b._se_adaptpool(y))))))
        y = torch.sigmoid(s) * y
        return skip, b._bn2(b._project_conv(b._project_conv_padding(y)))


class EfficientNetEncoder(nn.Module):
    """
    MONAI's EfficientNet as a feature extractor with the taps of Keras ``segmentation_models``: the expand
    activations of the stride-2 blocks (``block2a/3a/4a/6a_expand_activation``, at 1/2, 1/4, 1/8, 1/16) and the
    top activation (1/32). For b0 their channels are 96, 144, 240, 672 and 1280.

    Args:
        model_name: ``"efficientnet-b0"`` ... ``"efficientnet-b7"``.
        in_channels: input channels.
        weights: optional local file with MONAI ``EfficientNetBN`` weights (ImageNet weights converted to
            MONAI's names); the classifier keys are ignored. Nothing is downloaded.
        bn_momentum: BatchNorm running-statistics momentum (PyTorch convention). MONAI's EfficientNet default,
            0.01 (Keras' 0.99), needs thousands of iterations before eval-mode predictions are usable; 0.1 suits
            short runs and is the default here.
    """

    def __init__(
        self,
        model_name: str = "efficientnet-b0",
        in_channels: int = 3,
        weights: str | Path | None = None,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        norm = ("batch", {"eps": 1e-3, "momentum": bn_momentum})
        net = EfficientNetBN(model_name, pretrained=False, spatial_dims=2, in_channels=in_channels, norm=norm)
        if weights is not None:
            state = {k: v for k, v in _state_dict(weights).items() if not k.startswith("_fc.")}
            net.load_state_dict(state, strict=False)
            missing = [k for k in net.state_dict() if k not in state and not k.startswith("_fc.")]
            if missing:
                raise ValueError(f"encoder weights '{weights}' lack {len(missing)} key(s), e.g. {missing[:3]}.")
        net.set_swish(memory_efficient=False)
        self.stem = _Stem(net)
        levels, pending = [], []
        for stage in net._blocks:
            for block in stage:
                if block.stride == 2:
                    levels.append(_TapLevel(pending, block))
                    pending = []
                else:
                    pending.append(block)
        self.levels = nn.ModuleList(levels)
        self.tail = nn.Sequential(*pending, net._conv_head_padding, net._conv_head, net._bn1, net._swish)
        self.out_channels = [lvl.block._bn0.num_features for lvl in levels] + [net._bn1.num_features]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features: list[torch.Tensor] = []
        for level in self.levels:
            skip, x = level(x)
            features.append(skip)
        features.append(self.tail(x))
        return features


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
    def __init__(self, encoder: EfficientNetEncoder, decoder: nn.Module, out_channels: int) -> None:
        super().__init__(encoder, decoder, nn.Conv2d(decoder.out_channels, out_channels, kernel_size=3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 != 0 or x.shape[-2] % 32 != 0:
            raise ValueError("EfficientNet U/Link networks need height and width divisible by 32 (e.g. 384x512).")
        return self.head(self.decoder(self.encoder(x)))


class EffUNet(_EffNet):
    """
    EfficientNet U-Net as TATL used it (Keras ``segmentation_models.Unet("efficientnetb0")``): skips from the
    expand activations of blocks 2a/3a/4a/6a, decoder 256/128/64/32/16 with two Conv3x3-BN-ReLU per stage,
    3x3 head with bias. Outputs logits; height and width must be multiples of 32. With b0 and one output channel
    it has 10,115,501 parameters counting BatchNorm running statistics (10,071,501 trainable), TATL Table 7.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffUNet

        net = EffUNet(in_channels=3, out_channels=1)
        print(net(torch.rand(1, 3, 384, 512)).shape)  # torch.Size([1, 1, 384, 512])

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        model_name: EfficientNet variant, ``"efficientnet-b0"`` by default.
        decoder_channels: filters of the five decoder stages.
        encoder_weights: optional local file of MONAI ``EfficientNetBN`` weights for the encoder.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        model_name: str = "efficientnet-b0",
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        encoder_weights: str | Path | None = None,
    ) -> None:
        encoder = EfficientNetEncoder(model_name, in_channels, encoder_weights)
        super().__init__(encoder, UNetDecoder(encoder.out_channels, decoder_channels), out_channels)


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
        model_name: EfficientNet variant, ``"efficientnet-b0"`` by default.
        last_channels: filters of the last decoder stage.
        encoder_weights: optional local file of MONAI ``EfficientNetBN`` weights for the encoder.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        model_name: str = "efficientnet-b0",
        last_channels: int = 16,
        encoder_weights: str | Path | None = None,
    ) -> None:
        encoder = EfficientNetEncoder(model_name, in_channels, encoder_weights)
        super().__init__(encoder, LinkNetDecoder(encoder.out_channels, last_channels), out_channels)
