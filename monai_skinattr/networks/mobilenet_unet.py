"""U-Net with a torchvision MobileNetV2 encoder (the ISIC 2016 MobileNetV2 method, METHODS.md §5)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import EncoderDecoder, SkipDecoder
from .encoders import MobileNetV2Encoder

__all__ = ["MobileNetV2Encoder", "MobileNetV2UNet"]

#: per decoder level, deepest first: (transposed-convolution output channels, Conv3x3 output channels).
_LEVELS = ((512, 256), (256, 128), (128, 64))
#: ``set_trainable`` mode -> number of leading encoder stages frozen ("last": ``features[:14]``, stage 4 open).
_FROZEN_STAGES = {"frozen": 5, "last": 4, "all": 0}


class _DilatedConvBlock(nn.Module):
    """The report's ``DilatedConvBlock``: a dilated Conv3x3 (with bias, padding = dilation), BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=dilation, dilation=dilation)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class _UpStage(nn.Module):
    """ConvTranspose2d(k2, s2), concatenation with the encoder skip, :class:`_DilatedConvBlock`."""

    def __init__(self, in_channels: int, up_channels: int, skip_channels: int, out_channels: int, dilation: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, up_channels, kernel_size=2, stride=2)
        self.block = _DilatedConvBlock(up_channels + skip_channels, out_channels, dilation)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:  # only for input sizes that are not multiples of 32
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


class MobileNetV2UNet(EncoderDecoder):
    """
    The MobileNetV2-encoder U-Net of the ISIC 2016 report (METHODS.md §5): torchvision ``mobilenet_v2().features``
    as encoder, the final 320 -> 1280 convolution included (2,223,872 parameters), with skips from its stages at 1/4
    (24 channels), 1/8 (32) and 1/16 (96) and the 1280-channel map at 1/32 as bottleneck; the decoder is

    .. code-block:: text

        ConvT(1280->512, k2 s2) -> concat stage 3 (96 ch, 1/16) -> Conv3x3(608->256) + BN + ReLU
        ConvT(256->256, k2 s2)  -> concat stage 2 (32 ch, 1/8)  -> Conv3x3(288->128) + BN + ReLU
        ConvT(128->128, k2 s2)  -> concat stage 1 (24 ch, 1/4)  -> Conv3x3(152->64)  + BN + ReLU
        Conv1x1(64->out_channels) at 1/4 -> bilinear upsampling to the input size

    The report calls the Conv3x3 blocks "DilatedConvBlocks" without giving the dilation (it has no parameters);
    here it is ``dilation=2`` (padding 2, size kept) by default. 6,995,457 parameters in all (not counting BatchNorm
    running statistics), 4,771,585 of them in the decoder and head. The output is logits ``(B, out_channels, H, W)``
    for ``H`` and ``W`` multiples of 32 (128 x 128 in the report); other sizes of at least 32 also work (the
    upsampled map is resized to the skip's size where they differ).

    :meth:`set_trainable` gives the report's three phases: ``"frozen"`` (all of ``features`` frozen, 4,771,585
    trainable), ``"last"`` ("stage 4" = ``features[14:19]`` trains, 1,681,344 more; ``features[:14]``, 542,528,
    stays frozen: 6,452,929 trainable) and ``"all"``. Frozen encoder stages stay in eval mode (their BatchNorm
    statistics do not move) when the network is put in training mode, as with :func:`freeze_encoder`.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import MobileNetV2UNet, count_parameters

        net = MobileNetV2UNet().set_trainable("frozen")  # encoder_weights="mobilenet_v2-b0353104.pth" for ImageNet
        print(net(torch.rand(2, 3, 128, 128)).shape)  # torch.Size([2, 1, 128, 128])
        print(count_parameters(net, bn_statistics=False, trainable_only=True))  # 4771585

    Args:
        in_channels: input channels; must be 3 with ``encoder_weights``, any number without.
        out_channels: output channels (logits; 1 for the report's binary lesion mask).
        encoder_weights: optional local torchvision MobileNetV2 state dict, nothing is downloaded:
            ``mobilenet_v2-7ebf99e0.pth`` (``MobileNet_V2_Weights.IMAGENET1K_V2``,
            ``https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth``) or ``mobilenet_v2-b0353104.pth``
            (``MobileNet_V2_Weights.IMAGENET1K_V1``, ``https://download.pytorch.org/models/mobilenet_v2-b0353104.pth``;
            the report says "ImageNetV1"). Loaded strictly apart from the ``classifier.*`` keys.
        dilation: dilation of the decoder's Conv3x3 blocks (2 by default; 1 gives plain convolutions).

    Raises:
        ValueError: ``encoder_weights`` with ``in_channels != 3``; weights with missing, unexpected or differently
            shaped tensors (the message lists them).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        encoder_weights: str | Path | None = None,
        dilation: int = 2,
    ) -> None:
        encoder = MobileNetV2Encoder(in_channels, encoder_weights, last_conv=True)
        chans = encoder.out_channels  # [16, 24, 32, 96, 1280]
        stages, cin = [], chans[-1]
        for (up, out), skip in zip(_LEVELS, chans[-2:0:-1], strict=True):
            stages.append(_UpStage(cin, up, skip, out, dilation))
            cin = out
        decoder = SkipDecoder(stages, cin)
        super().__init__(encoder, decoder, nn.Conv2d(cin, out_channels, kernel_size=1))

    def set_trainable(self, mode: str) -> MobileNetV2UNet:
        """
        ``"frozen"``: all of the encoder frozen; ``"last"``: only the last encoder stage (the report's "stage 4",
        ``features[14:19]``) of the encoder trains; ``"all"``: everything trains. The decoder and head always train.
        Returns the network.
        """
        frozen = _FROZEN_STAGES.get(mode)
        if frozen is None:
            raise ValueError(f"mode must be 'frozen', 'last' or 'all', got '{mode}'.")
        self.encoder_frozen = mode == "frozen"
        for i, stage in enumerate(self.encoder.stages):
            for p in stage.parameters():
                p.requires_grad_(i >= frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> MobileNetV2UNet:
        """As ``nn.Module.train``, keeping every encoder stage none of whose parameters trains in eval mode."""
        super().train(mode)
        for stage in self.encoder.stages:
            if not any(p.requires_grad for p in stage.parameters()):
                stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.decoder(self.encoder(x)))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
