"""Input normalisation as a network layer, so training, inference and a cascade cropping inside a network agree."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelNormalization"]

#: ImageNet channel statistics (RGB, inputs scaled to [0, 1]), torchvision's.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: what Inception-style ImageNet weights expect (Google's, timm's ``IMAGENET_INCEPTION_MEAN/STD``): [0, 1] -> [-1, 1]
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


class ChannelNormalization(nn.Module):
    """
    Normalise each channel of a ``(B, C, *spatial)`` batch: with the fixed ImageNet statistics, or per image with
    that image's own channel mean and standard deviation. It holds no state (the ImageNet statistics are
    non-persistent buffers), so adding it in front of a network leaves its state dict unchanged, and it scripts.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import ChannelNormalization, EffUNet

        net = torch.nn.Sequential(ChannelNormalization("imagenet"), EffUNet())
        y = ChannelNormalization("instance")(torch.rand(2, 3, 8, 8))
        print(y.mean(dim=(2, 3)).abs().max() < 1e-5)  # tensor(True)

    Args:
        mode: ``"imagenet"``: ``(x - mean) / std`` with ImageNet mean (0.485, 0.456, 0.406) and std
            (0.229, 0.224, 0.225), for RGB inputs in [0, 1] (what ImageNet-initialised encoders expect);
            ``"inception"``: ``(x - 0.5) / 0.5`` (what Inception-style ImageNet weights expect, e.g. timm's
            Inception-ResNet-v2);
            ``"instance"``: per image and channel, subtract the mean over the spatial dimensions and divide by the
            (population) standard deviation plus ``eps`` (any number of channels, any intensity range);
            ``"none"``: identity.
        eps: added to the standard deviation in ``"instance"`` mode, 1e-6 by default, so a constant channel maps
            to 0 instead of NaN.

    Raises:
        ValueError: ``mode`` is none of the above; in ``"imagenet"`` or ``"inception"`` mode, an input without 3
            channels.
    """

    modes = ("imagenet", "inception", "instance", "none")

    def __init__(self, mode: str = "imagenet", eps: float = 1e-6) -> None:
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f"mode must be one of {', '.join(self.modes)}; got '{mode}'.")
        self.mode = mode
        self.eps = eps
        inception = mode == "inception"
        self.register_buffer("mean", torch.tensor(INCEPTION_MEAN if inception else IMAGENET_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(INCEPTION_STD if inception else IMAGENET_STD), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "imagenet" or self.mode == "inception":
            if x.dim() < 3 or x.shape[1] != 3:
                raise ValueError(f"{self.mode} normalisation needs (B, 3, *spatial) inputs, got {list(x.shape)}.")
            shape = [1, 3] + [1] * (x.dim() - 2)
            return (x - self.mean.to(x.dtype).view(shape)) / self.std.to(x.dtype).view(shape)
        if self.mode == "instance":
            dims = list(range(2, x.dim()))
            std, mean = torch.std_mean(x, dim=dims, correction=0, keepdim=True)
            return (x - mean) / (std + self.eps)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}" + (f", eps={self.eps}" if self.mode == "instance" else "")
