"""The transfer thesis' three networks by name, and their encoders as image classifiers for pretraining."""

from __future__ import annotations

import torch
from torch import nn

from .attention_unet import ResNet50AttentionUNet
from .base import EncoderDecoder, init_weights
from .swin_unet import SwinUNet
from .unet import UNet

__all__ = ["EncoderClassifier", "THESIS_SIZE_MULTIPLES", "thesis_network"]

#: name -> (network class, :func:`init_weights` scheme).
_THESIS_NETWORKS: dict[str, tuple[type[EncoderDecoder], str]] = {
    "unet": (UNet, "he"),
    "resnet50_attention": (ResNet50AttentionUNet, "he"),
    "swin": (SwinUNet, "swin"),
}
#: name -> what each side of a 2D input must be a multiple of for the output to have the input's size (the U-Net
#: halves 4 times; the ResNet50 and Swin encoders 5 times)
THESIS_SIZE_MULTIPLES = {"unet": 16, "resnet50_attention": 32, "swin": 32}


def thesis_network(
    name: str, in_channels: int = 3, out_channels: int = 1, drop_path: float = 0.0, **kwargs
) -> EncoderDecoder:
    """
    One of the transfer thesis' segmentation networks (section 2.1) by name: ``"unet"`` (:class:`UNet`),
    ``"resnet50_attention"`` (:class:`ResNet50AttentionUNet`) or ``"swin"`` (:class:`SwinUNet`), initialised as the
    thesis.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import thesis_network

        net = thesis_network("swin", out_channels=4, embed_dim=12, num_heads=(1, 2, 2, 4), window_size=2)
        print(net(torch.rand(2, 3, 64, 64)).shape)  # torch.Size([2, 4, 64, 64])

    Args:
        name: ``"unet"``, ``"resnet50_attention"`` or ``"swin"``.
        in_channels: input channels (the thesis repeats grey images to 3).
        out_channels: output channels (logits).
        drop_path: stochastic depth rate of the encoder (ResNet50, Swin; the thesis pretrains with 0.1 and 0.2).
            The U-Net has no residual branches: it must be 0.
        kwargs: further arguments of the network's class, e.g. ``features`` (U-Net), ``decoder_channels``
            (ResNet50), ``embed_dim`` / ``num_heads`` / ``window_size`` (Swin) for a small test configuration.

    Raises:
        ValueError: an unknown ``name``, or ``drop_path`` for the U-Net.
    """
    if name not in _THESIS_NETWORKS:
        raise ValueError(f"unknown thesis network '{name}'; use one of {', '.join(_THESIS_NETWORKS)}.")
    if name == "unet":
        if drop_path:
            raise ValueError(f"the U-Net has no residual branches for stochastic depth: drop_path={drop_path}, use 0.")
        return UNet(in_channels, out_channels, **kwargs)
    return _THESIS_NETWORKS[name][0](in_channels=in_channels, out_channels=out_channels, drop_path=drop_path, **kwargs)


class EncoderClassifier(nn.Module):
    """
    The encoder of :func:`thesis_network` ``(name)`` with a classification head, as the thesis pretrains it on
    ImageNet (section 2.2): global average pooling of the encoder's last level and one linear layer (logits; the
    softmax is in the loss). ``classifier.encoder`` has exactly the modules and state-dict keys of
    ``thesis_network(name, ...).encoder`` (it is built by it), so a pretraining checkpoint of the encoder loads into
    a segmentation network with ``net.encoder.load_state_dict(state)``. Head initialisation: He normal for the
    convolutional encoders, truncated normal (std 0.02) for Swin. Encoder + 1000-class head: 19,909,096 (U-Net; the
    thesis' 19.9 M), 25,557,032 (torchvision's ResNet50; the thesis' 22.8 M counts its reference code's
    parameter-free shortcuts) and 21,182,386 (Swin; 21.2 M) parameters.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EncoderClassifier, thesis_network

        classifier = EncoderClassifier("unet", num_classes=10, features=(4, 8, 8, 8, 8))
        print(classifier(torch.rand(2, 3, 32, 32)).shape)  # torch.Size([2, 10])
        net = thesis_network("unet", out_channels=4, features=(4, 8, 8, 8, 8))
        net.encoder.load_state_dict(classifier.encoder.state_dict())

    Args:
        name: ``"unet"``, ``"resnet50_attention"`` or ``"swin"``.
        num_classes: classes of the head.
        in_channels: input channels.
        drop_path: stochastic depth rate of the encoder (ResNet50 0.1, Swin 0.2 in the thesis; U-Net 0).
        kwargs: the same further network arguments as :func:`thesis_network` (options of the decoder only, such as
            ``decoder_channels``, are accepted and do not change the encoder), so one set of options serves
            pretraining and the downstream network.
    """

    def __init__(self, name: str, num_classes: int, in_channels: int = 3, drop_path: float = 0.0, **kwargs) -> None:
        super().__init__()
        self.encoder = thesis_network(name, in_channels, 1, drop_path, **kwargs).encoder
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = init_weights(nn.Linear(self.encoder.out_channels[-1], num_classes), _THESIS_NETWORKS[name][1])
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.encoder(x)[-1]), 1))

    def extra_repr(self) -> str:
        return f"name='{self.name}', num_classes={self.head.out_features}"
