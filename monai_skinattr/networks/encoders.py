"""
Encoders by name (segmentation_models_pytorch's ``encoders/``, MONAI ``FlexibleUNet``'s backbones): every registered
encoder returns five feature maps at strides 2, 4, 8, 16 and 32, shallow to deep, with their channels in
``out_channels``, so any decoder of the package takes any of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from monai.networks.nets import EfficientNetBN
from torch import nn
from torchvision.models import mobilenet_v2, resnet50
from torchvision.models.resnet import Bottleneck
from torchvision.ops import StochasticDepth

from .base import StagedEncoder, _state_dict

__all__ = [
    "EfficientNetEncoder",
    "ResNet50Encoder",
    "MobileNetV2Encoder",
    "register_encoder",
    "get_encoder",
    "list_encoders",
]

#: ``factory(in_channels, weights, **kwargs) -> nn.Module`` by encoder name.
_ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str, factory: Callable[..., nn.Module] | None = None) -> Callable:
    """
    Register ``factory(in_channels: int, weights: str | Path | None, **kwargs) -> nn.Module`` under ``name``. The
    module it builds has ``out_channels: list[int]`` and returns the list of feature maps at strides 2, 4, 8, 16 and
    32, shallow to deep. Use it as a function or as a decorator; registering a taken name raises ``ValueError``.

    .. code-block:: python

        from monai_skinattr.networks import EffUNet, register_encoder

        @register_encoder("my-encoder")
        def my_encoder(in_channels, weights=None, **kwargs):
            return MyEncoder(in_channels, **kwargs)  # out_channels = [c2, c4, c8, c16, c32]

        net = EffUNet(encoder="my-encoder")
    """

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _ENCODERS:
            raise ValueError(f"encoder '{name}' is already registered.")
        _ENCODERS[name] = fn
        return fn

    return add if factory is None else add(factory)


def list_encoders() -> list[str]:
    """The registered encoder names, sorted."""
    return sorted(_ENCODERS)


def get_encoder(name: str, in_channels: int = 3, weights: str | Path | None = None, **kwargs) -> nn.Module:
    """
    Build the encoder registered as ``name``.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import get_encoder

        enc = get_encoder("resnet50", in_channels=1)
        print(enc.out_channels)  # [64, 256, 512, 1024, 2048]
        print([f.shape[-1] for f in enc(torch.rand(1, 1, 64, 64))])  # [32, 16, 8, 4, 2]

    Args:
        name: a registered name (see :func:`list_encoders`).
        in_channels: input channels.
        weights: optional local weight file for the encoder (its format is the encoder's); nothing is downloaded.
        kwargs: further arguments of that encoder.

    Raises:
        ValueError: ``name`` is not registered.
    """
    if name not in _ENCODERS:
        raise ValueError(f"unknown encoder '{name}'; registered encoders: {', '.join(list_encoders())}.")
    return _ENCODERS[name](in_channels, weights, **kwargs)


def _load_strict(
    net: nn.Module,
    source: Mapping[str, torch.Tensor],
    weights: str | Path,
    ignore: tuple[str, ...],
    rename: Callable[[str], str] | None = None,
) -> None:
    """
    Load ``source`` into ``net``, requiring every key of each side (outside the ``ignore`` prefixes) to match one of
    the other with the same shape; ``rename(key)`` gives a second name to look a network key up under. A missing
    ``num_batches_tracked`` is allowed (older files lack it).
    """
    state, used, missing, mismatched = {}, set(), [], []
    for key, value in net.state_dict().items():
        if key.startswith(ignore):
            continue
        src = key if key in source or rename is None else rename(key)
        if src not in source:
            if not key.endswith("num_batches_tracked"):
                missing.append(key)
            continue
        used.add(src)
        if source[src].shape != value.shape:
            mismatched.append(f"{src}: {tuple(source[src].shape)} vs {tuple(value.shape)}")
        state[key] = source[src]
    unexpected = [k for k in source if k not in used and not k.startswith(ignore)]
    problems = []
    if missing:
        problems.append(f"lack {len(missing)} key(s) of the encoder, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"have {len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    if mismatched:
        problems.append(f"have {len(mismatched)} tensor(s) of another shape (file vs encoder), e.g. {mismatched[:3]}")
    if problems:
        raise ValueError(f"encoder weights '{weights}' do not fit {type(net).__name__}: " + "; ".join(problems) + ".")
    net.load_state_dict(state, strict=False)


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


#: lukemelas ``EfficientNet-PyTorch`` key -> MONAI key: MONAI nests blocks by stage (``_blocks.<stage>.<block>``).
_STAGE_INDEX = re.compile(r"(.+)\.\d+(\.\d+\..+)")


class EfficientNetEncoder(nn.Module):
    """
    MONAI's EfficientNet as a feature extractor with the taps of Keras ``segmentation_models``: the expand
    activations of the stride-2 blocks (``block2a/3a/4a/6a_expand_activation``, at 1/2, 1/4, 1/8, 1/16) and the
    top activation (1/32). For b0 their channels are 96, 144, 240, 672 and 1280. Registered as ``"efficientnet-b0"``
    ... ``"efficientnet-b7"``.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EfficientNetEncoder

        # ImageNet weights: the file MONAI downloads for EfficientNetBN("efficientnet-b0", pretrained=True)
        enc = EfficientNetEncoder("efficientnet-b0", weights="efficientnet-b0-355c32eb.pth")
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [96, 144, 240, 672, 1280]

    Args:
        model_name: ``"efficientnet-b0"`` ... ``"efficientnet-b7"``.
        in_channels: input channels.
        weights: optional local weight file: the ImageNet file MONAI downloads for
            ``EfficientNetBN(model_name, pretrained=True)`` (for b0 ``efficientnet-b0-355c32eb.pth`` from
            ``https://github.com/lukemelas/EfficientNet-PyTorch/releases/download/1.0/``, see ``url_map`` in
            ``monai.networks.nets.efficientnet``; its flat ``_blocks.<i>`` keys are mapped as MONAI maps them), or a
            saved MONAI ``EfficientNetBN`` state dict (or a MONAI checkpoint holding one). Loading is strict apart
            from the classifier ``_fc.*`` keys: missing, unexpected or differently shaped tensors raise
            ``ValueError``. Nothing is downloaded.
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
            _load_strict(net, _state_dict(weights), weights, ("_fc.",), lambda k: _STAGE_INDEX.sub(r"\1\2", k))
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


def _check_pretrained_channels(name: str, in_channels: int, weights: str | Path | None) -> None:
    """Pretrained weights fix the first convolution to 3 input channels: refuse any other ``in_channels`` with them."""
    if weights is not None and in_channels != 3:
        raise ValueError(
            f"{name}: the weights '{weights}' have a first convolution for 3 (RGB) input channels, which cannot be "
            f"reused for in_channels={in_channels}; give 3-channel input (e.g. repeat a grey channel) or use "
            "weights=None (a randomly initialised first convolution for any in_channels)."
        )


class _DropPathBottleneck(nn.Module):
    """
    torchvision's ``Bottleneck`` with stochastic depth (``torchvision.ops.StochasticDepth``, per sample) on the
    residual branch: ``relu(drop(bn3(conv3(...))) + identity)``. It holds the block's own layers under their own
    names, so its state-dict keys are torchvision's.
    """

    def __init__(self, block: Bottleneck, p: float) -> None:
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2 = block.conv1, block.bn1, block.conv2, block.bn2
        self.conv3, self.bn3, self.relu, self.downsample = block.conv3, block.bn3, block.relu, block.downsample
        self.drop_path = StochasticDepth(p, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        if self.downsample is not None:
            identity = self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.drop_path(self.bn3(self.conv3(out))) + identity)


class ResNet50Encoder(nn.Module):
    """
    torchvision ResNet50 features at 1/2 (64), 1/4 (256), 1/8 (512), 1/16 (1024) and 1/32 (2048), 23,508,032
    parameters. Registered as ``"resnet50"``. Every bottleneck block carries stochastic depth on its residual branch,
    its rate rising linearly from 0 (first block) to ``drop_path`` (16th block), active only in training mode.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import ResNet50Encoder

        enc = ResNet50Encoder(drop_path=0.1)  # the thesis' ImageNet pretraining rate
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [64, 256, 512, 1024, 2048]

    Args:
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local torchvision ResNet50 state dict, e.g. ``resnet50-11ad3fa6.pth`` (``IMAGENET1K_V2``,
            ``https://download.pytorch.org/models/resnet50-11ad3fa6.pth``), loaded strictly apart from the ``fc.*``
            keys: missing, unexpected or differently shaped tensors raise ``ValueError``. Nothing is downloaded.
        drop_path: stochastic depth rate of the last block (0 = none). Stochastic depth adds no parameters: the
            state dict is the same for every rate.

    Raises:
        ValueError: ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(self, in_channels: int = 3, weights: str | Path | None = None, drop_path: float = 0.0) -> None:
        super().__init__()
        _check_pretrained_channels(type(self).__name__, in_channels, weights)
        net = resnet50(weights=None)
        if weights is not None:
            _load_strict(net, _state_dict(weights), weights, ("fc.",))
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        layers = [net.layer1, net.layer2, net.layer3, net.layer4]
        rates = iter(torch.linspace(0, drop_path, sum(len(layer) for layer in layers)).tolist())
        blocks = [[_DropPathBottleneck(block, next(rates)) for block in layer] for layer in layers]
        self.layers = nn.ModuleList([nn.Sequential(*layer) for layer in blocks])
        self.out_channels = [64, 256, 512, 1024, 2048]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features: list[torch.Tensor] = [x]
        x = self.pool(x)
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


#: ``features`` index ranges of the five MobileNetV2 stages (outputs 16@1/2, 24@1/4, 32@1/8, 96@1/16, 320@1/32;
#: the last one ends at 19 instead of 18 with the final 320 -> 1280 convolution ``features[18]``).
_MOBILENET_STAGES = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 18))


class MobileNetV2Encoder(StagedEncoder):
    """
    torchvision MobileNetV2 ``features`` split into five stages, ``features[0:2]`` (16 channels, 1/2), ``[2:4]``
    (24, 1/4), ``[4:7]`` (32, 1/8), ``[7:14]`` (96, 1/16) and ``[14:18]`` (320, 1/32), or ``[14:19]`` (1280, 1/32)
    with ``last_conv=True``. Registered as ``"mobilenet_v2"`` (without the final convolution unless
    ``last_conv=True`` is passed).

    .. code-block:: python

        import torch
        from monai_skinattr.networks import MobileNetV2Encoder

        enc = MobileNetV2Encoder(last_conv=True)  # weights="mobilenet_v2-7ebf99e0.pth" for ImageNet
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [16, 24, 32, 96, 1280]

    Args:
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local torchvision MobileNetV2 state dict: ``mobilenet_v2-7ebf99e0.pth``
            (``IMAGENET1K_V2``, ``https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth``) or
            ``mobilenet_v2-b0353104.pth`` (``IMAGENET1K_V1``,
            ``https://download.pytorch.org/models/mobilenet_v2-b0353104.pth``), or any saved ``mobilenet_v2()``
            state dict. Loaded strictly apart from the ``classifier.*`` keys: missing, unexpected or differently
            shaped tensors raise ``ValueError``. Nothing is downloaded.
        last_conv: keep torchvision's final 1x1 convolution 320 -> 1280 (``features[18]``, Conv-BN-ReLU6) at the
            end of the last stage, as the whole of ``mobilenet_v2().features`` (2,223,872 parameters).

    Raises:
        ValueError: ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(self, in_channels: int = 3, weights: str | Path | None = None, last_conv: bool = False) -> None:
        _check_pretrained_channels(type(self).__name__, in_channels, weights)
        net = mobilenet_v2(weights=None)
        if weights is not None:
            _load_strict(net, _state_dict(weights), weights, ("classifier.",))
        if in_channels != 3:
            net.features[0][0] = nn.Conv2d(in_channels, 32, kernel_size=3, stride=2, padding=1, bias=False)
        bounds = list(_MOBILENET_STAGES)
        if last_conv:
            bounds[-1] = (bounds[-1][0], len(net.features))
        stages = [nn.Sequential(*net.features[a:b]) for a, b in bounds]
        super().__init__(stages, [16, 24, 32, 96, net.last_channel if last_conv else 320])


def _efficientnet_factory(model_name: str) -> Callable[..., nn.Module]:
    def factory(in_channels: int, weights: str | Path | None = None, **kwargs) -> nn.Module:
        return EfficientNetEncoder(model_name, in_channels, weights, **kwargs)

    return factory


for _b in range(8):
    register_encoder(f"efficientnet-b{_b}", _efficientnet_factory(f"efficientnet-b{_b}"))
register_encoder("resnet50", ResNet50Encoder)
register_encoder("mobilenet_v2", MobileNetV2Encoder)
del _b
