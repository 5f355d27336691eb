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
from torchvision.models import densenet169, mobilenet_v2, resnet50, resnet101, resnet152
from torchvision.models.resnet import Bottleneck
from torchvision.models.vgg import cfgs as _VGG_CFGS
from torchvision.models.vgg import make_layers as _vgg_layers
from torchvision.ops import StochasticDepth

from .base import StagedEncoder, _state_dict

__all__ = [
    "EfficientNetEncoder",
    "ResNetEncoder",
    "ResNet50Encoder",
    "ResNet152Encoder",
    "MobileNetV2Encoder",
    "VGG16Encoder",
    "DenseNet169Encoder",
    "InceptionResNetV2Encoder",
    "register_encoder",
    "get_encoder",
    "list_encoders",
    "input_normalization",
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


#: the input normalisation (``ChannelNormalization`` mode) an encoder's ImageNet weights expect, where not "imagenet"
_INPUT_NORMALIZATION = {"inceptionresnetv2": "inception"}


def input_normalization(name: str) -> str:
    """
    The ``ChannelNormalization`` mode the ImageNet weights of encoder ``name`` were trained with: ``"inception"``
    (``(x - 0.5) / 0.5``) for Inception-ResNet-v2, ``"imagenet"`` (torchvision's mean and std) for the others.

    .. code-block:: python

        input_normalization("inceptionresnetv2")  # 'inception'
    """
    return _INPUT_NORMALIZATION.get(name, "imagenet")


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
    name: str = "",
) -> None:
    """
    Load ``source`` into ``net``, requiring every key of each side (outside the ``ignore`` prefixes) to match one of
    the other with the same shape; ``rename(key)`` gives a second name to look a network key up under. A missing
    ``num_batches_tracked`` is allowed (older files lack it). ``name`` is what the message calls ``net`` (its class
    name by default).
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
        raise ValueError(
            f"encoder weights '{weights}' do not fit {name or type(net).__name__}: " + "; ".join(problems) + "."
        )
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


#: torchvision builders of the bottleneck ResNets :class:`ResNetEncoder` takes, by depth.
_RESNETS: dict[int, Callable[..., nn.Module]] = {50: resnet50, 101: resnet101, 152: resnet152}


class ResNetEncoder(nn.Module):
    """
    torchvision's bottleneck ResNet (50, 101 or 152 layers) features at 1/2 (64 channels, the stem's ReLU), 1/4
    (256, ``layer1``), 1/8 (512, ``layer2``), 1/16 (1024, ``layer3``) and 1/32 (2048, ``layer4``), as
    segmentation_models_pytorch taps them. Every bottleneck block carries stochastic depth on its residual branch,
    its rate rising linearly from 0 (first block) to ``drop_path`` (last block), active only in training mode.
    :class:`ResNet50Encoder` (``"resnet50"``) and :class:`ResNet152Encoder` (``"resnet152"``) are its registered
    depths.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import ResNetEncoder

        enc = ResNetEncoder(152)  # weights="resnet152-394f9c45.pth" for ImageNet
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [64, 256, 512, 1024, 2048]

    Args:
        depth: 50, 101 or 152 (torchvision ``resnet50()``, ``resnet101()``, ``resnet152()``).
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local torchvision state dict of that depth, e.g. ``resnet50-11ad3fa6.pth`` or
            ``resnet152-f82ba261.pth`` (``IMAGENET1K_V2``, ``https://download.pytorch.org/models/<file>``), loaded
            strictly apart from the ``fc.*`` keys: missing, unexpected or differently shaped tensors raise
            ``ValueError``. Nothing is downloaded.
        drop_path: stochastic depth rate of the last block (0 = none). Stochastic depth adds no parameters: the
            state dict is the same for every rate.

    Raises:
        ValueError: an unknown ``depth``, ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(
        self, depth: int = 50, in_channels: int = 3, weights: str | Path | None = None, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f"ResNetEncoder: depth {depth} is not one of {sorted(_RESNETS)}.")
        _check_pretrained_channels(type(self).__name__, in_channels, weights)
        net = _RESNETS[depth](weights=None)
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


class ResNet50Encoder(ResNetEncoder):
    """
    torchvision ResNet50 features at 1/2 (64), 1/4 (256), 1/8 (512), 1/16 (1024) and 1/32 (2048), 23,508,032
    parameters. Registered as ``"resnet50"``. Every bottleneck block carries stochastic depth on its residual branch,
    its rate rising linearly from 0 (first block) to ``drop_path`` (16th block), active only in training mode.
    :class:`ResNetEncoder` with ``depth=50``.

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
        super().__init__(50, in_channels, weights, drop_path)


class ResNet152Encoder(ResNetEncoder):
    """
    torchvision ResNet152 features at 1/2 (64), 1/4 (256), 1/8 (512), 1/16 (1024) and 1/32 (2048), 58,143,808
    parameters (+ 151,424 BatchNorm statistics); TATL's "ResNet-151" backbone (TATL Table 7 counts Keras
    Applications' ResNet152, whose convolutions have biases that torchvision's lack). Registered as ``"resnet152"``.
    :class:`ResNetEncoder` with ``depth=152``: stochastic depth rising to ``drop_path`` at the 50th block.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffLinkNet, ResNet152Encoder

        enc = ResNet152Encoder()  # weights="resnet152-394f9c45.pth" for ImageNet
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [64, 256, 512, 1024, 2048]
        net = EffLinkNet(encoder="resnet152", encoder_weights="resnet152-394f9c45.pth")

    Args:
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local torchvision ResNet152 state dict: ``resnet152-394f9c45.pth`` (``IMAGENET1K_V1``,
            ``https://download.pytorch.org/models/resnet152-394f9c45.pth``) or ``resnet152-f82ba261.pth``
            (``IMAGENET1K_V2``, ``https://download.pytorch.org/models/resnet152-f82ba261.pth``), loaded strictly
            apart from the ``fc.*`` keys: missing, unexpected or differently shaped tensors raise ``ValueError``.
            Nothing is downloaded.
        drop_path: stochastic depth rate of the last block (0 = none).

    Raises:
        ValueError: ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(self, in_channels: int = 3, weights: str | Path | None = None, drop_path: float = 0.0) -> None:
        super().__init__(152, in_channels, weights, drop_path)


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


#: ``features`` index ranges of the five VGG16 stages, ending at Keras' ``block2_conv2``, ``block3_conv3``,
#: ``block4_conv3``, ``block5_conv3`` (each after its ReLU) and ``block5_pool``.
_VGG16_STAGES = ((0, 9), (9, 16), (16, 23), (23, 30), (30, 31))


class _VGG16Features(nn.Module):
    """torchvision ``vgg16().features`` without the classifier (whose 123.6M parameters the encoder never uses)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.features = _vgg_layers(_VGG_CFGS["D"])
        if in_channels != 3:
            self.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        for m in self.features.modules():  # torchvision VGG's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)


class VGG16Encoder(StagedEncoder):
    """
    torchvision VGG16 ``features`` split into five stages with the taps of Keras ``segmentation_models``:
    ``features[0:9]`` (``block2_conv2``, 128 channels, 1/2), ``[9:16]`` (``block3_conv3``, 256, 1/4), ``[16:23]``
    (``block4_conv3``, 512, 1/8), ``[23:30]`` (``block5_conv3``, 512, 1/16) and ``[30:31]`` (``block5_pool``, 512,
    1/32); 14,714,688 parameters. Registered as ``"vgg16"``.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffUNet, VGG16Encoder

        enc = VGG16Encoder()  # weights="vgg16-397923af.pth" for ImageNet
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [128, 256, 512, 512, 512]
        net = EffUNet(encoder="vgg16", encoder_weights="vgg16-397923af.pth")

    Args:
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local torchvision VGG16 state dict: ``vgg16-397923af.pth`` (``IMAGENET1K_V1``,
            ``https://download.pytorch.org/models/vgg16-397923af.pth``), or any saved ``vgg16()`` state dict.
            Loaded strictly apart from the ``classifier.*`` keys: missing, unexpected or differently shaped tensors
            raise ``ValueError``. Nothing is downloaded.

    Raises:
        ValueError: ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(self, in_channels: int = 3, weights: str | Path | None = None) -> None:
        _check_pretrained_channels(type(self).__name__, in_channels, weights)
        net = _VGG16Features(in_channels)
        if weights is not None:
            _load_strict(net, _state_dict(weights), weights, ("classifier.",), name="torchvision vgg16")
        stages = [nn.Sequential(*net.features[a:b]) for a, b in _VGG16_STAGES]
        super().__init__(stages, [128, 256, 512, 512, 512])


#: a torchvision DenseNet key -> its name in the files torchvision releases (``denselayer1.norm.1.weight`` for
#: ``denselayer1.norm1.weight``; see ``_load_state_dict`` in ``torchvision.models.densenet``).
_DENSENET_OLD_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$")


def _densenet_old_key(key: str) -> str:
    return _DENSENET_OLD_KEY.sub(r"\1.\2.\3", key)


class DenseNet169Encoder(StagedEncoder):
    """
    torchvision DenseNet169 features with the taps of Keras ``segmentation_models`` (and
    segmentation_models_pytorch): ``conv0-norm0-relu0`` (64 channels, 1/2); then ``pool0``, ``denseblock1`` and the
    BatchNorm-ReLU that opens ``transition1`` (256, 1/4: the skip is the transition's ReLU output, before its 1x1
    convolution and average pool, which open the next stage); likewise ``denseblock2`` (512, 1/8) and
    ``denseblock3`` (1280, 1/16); last ``denseblock4``, ``norm5`` and a ReLU (1664, 1/32). 12,484,480 parameters
    (+ 158,400 BatchNorm statistics). Registered as ``"densenet169"``.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import DenseNet169Encoder, EffUNet

        enc = DenseNet169Encoder()  # weights="densenet169-b2777c0a.pth" for ImageNet
        print([f.shape[1] for f in enc(torch.rand(1, 3, 64, 64))])  # [64, 256, 512, 1280, 1664]
        net = EffUNet(encoder="densenet169", encoder_weights="densenet169-b2777c0a.pth")

    Args:
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local torchvision DenseNet169 state dict: ``densenet169-b2777c0a.pth`` (``IMAGENET1K_V1``,
            ``https://download.pytorch.org/models/densenet169-b2777c0a.pth``, whose dense layers have the old keys
            ``denselayer<i>.norm.1.weight`` ..., mapped as torchvision maps them), or a saved ``densenet169()``
            state dict (``denselayer<i>.norm1.weight`` ...). Loaded strictly apart from the ``classifier.*`` keys:
            missing, unexpected or differently shaped tensors raise ``ValueError``. Nothing is downloaded.

    Raises:
        ValueError: ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(self, in_channels: int = 3, weights: str | Path | None = None) -> None:
        _check_pretrained_channels(type(self).__name__, in_channels, weights)
        net = densenet169(weights=None)
        if weights is not None:
            source = _state_dict(weights)
            _load_strict(net, source, weights, ("classifier.",), _densenet_old_key, name="torchvision densenet169")
        f = net.features
        if in_channels != 3:
            f.conv0 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        t1, t2, t3 = f.transition1, f.transition2, f.transition3
        stages = [
            nn.Sequential(f.conv0, f.norm0, f.relu0),
            nn.Sequential(f.pool0, f.denseblock1, t1.norm, t1.relu),
            nn.Sequential(t1.conv, t1.pool, f.denseblock2, t2.norm, t2.relu),
            nn.Sequential(t2.conv, t2.pool, f.denseblock3, t3.norm, t3.relu),
            nn.Sequential(t3.conv, t3.pool, f.denseblock4, f.norm5, nn.ReLU(inplace=True)),
        ]
        super().__init__(stages, [64, 256, 512, 1280, 1664])


class InceptionResNetV2Encoder(StagedEncoder):
    """
    timm's Inception-ResNet-v2 (``timm.create_model("inception_resnet_v2")``) in five stages, ``conv2d_1a``-``2b``
    (64 channels, 1/2), ``maxpool_3a``-``conv2d_4a`` (192, 1/4), ``maxpool_5a``, ``mixed_5b`` and ``repeat`` (320,
    1/8), ``mixed_6a`` and ``repeat_1`` (1088, 1/16), ``mixed_7a``, ``repeat_2``, ``block8`` and ``conv2d_7b`` (1536,
    1/32); 54,306,464 parameters (+ 60,544 BatchNorm statistics). TATL's "ResNet-v2" backbone. timm (as Google's
    original) convolves without padding; here, as in segmentation_models_pytorch's encoder and Keras
    ``segmentation_models`` (``padding="same"``), every 3x3 convolution and max pool pads by 1, so the features are
    at exactly 1/2 ... 1/32 of the input (the weights are unchanged). Registered as ``"inceptionresnetv2"``; needs
    ``timm``.

    .. code-block:: python

        import torch
        from monai_skinattr.networks import EffLinkNet, InceptionResNetV2Encoder

        enc = InceptionResNetV2Encoder()  # weights="model.safetensors" of timm/inception_resnet_v2.tf_in1k
        print([f.shape[-1] for f in enc(torch.rand(1, 3, 64, 64))])  # [32, 16, 8, 4, 2]
        net = EffLinkNet(encoder="inceptionresnetv2")

    Args:
        in_channels: input channels. Without ``weights`` any number (the first convolution is built for it); with
            ``weights`` it must be 3.
        weights: optional local timm ``inception_resnet_v2`` state dict: ``model.safetensors`` of
            ``https://huggingface.co/timm/inception_resnet_v2.tf_in1k`` (Google's ImageNet weights), or any saved
            ``.safetensors`` / ``torch.save`` state dict of that timm model. Loaded strictly apart
            from the ``classif.*`` keys: missing, unexpected or differently shaped tensors raise ``ValueError``.
            Nothing is downloaded.

    Raises:
        ValueError: ``weights`` with ``in_channels != 3``, or weights that do not fit.
    """

    def __init__(self, in_channels: int = 3, weights: str | Path | None = None) -> None:
        _check_pretrained_channels(type(self).__name__, in_channels, weights)
        import timm  # imported here: importing timm takes a while

        net = timm.create_model("inception_resnet_v2", pretrained=False, in_chans=in_channels)
        if weights is not None:
            _load_strict(net, _state_dict(weights), weights, ("classif.",), name="timm inception_resnet_v2")
        for m in net.modules():  # "same" padding: sizes halve exactly at every stride 2
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                m.padding = (1, 1)
            elif isinstance(m, nn.MaxPool2d):
                m.padding = 1
        stages = [
            nn.Sequential(net.conv2d_1a, net.conv2d_2a, net.conv2d_2b),
            nn.Sequential(net.maxpool_3a, net.conv2d_3b, net.conv2d_4a),
            nn.Sequential(net.maxpool_5a, net.mixed_5b, net.repeat),
            nn.Sequential(net.mixed_6a, net.repeat_1),
            nn.Sequential(net.mixed_7a, net.repeat_2, net.block8, net.conv2d_7b),
        ]
        super().__init__(stages, [64, 192, 320, 1088, 1536])


def _efficientnet_factory(model_name: str) -> Callable[..., nn.Module]:
    def factory(in_channels: int, weights: str | Path | None = None, **kwargs) -> nn.Module:
        return EfficientNetEncoder(model_name, in_channels, weights, **kwargs)

    return factory


for _b in range(8):
    register_encoder(f"efficientnet-b{_b}", _efficientnet_factory(f"efficientnet-b{_b}"))
register_encoder("resnet50", ResNet50Encoder)
register_encoder("resnet152", ResNet152Encoder)
register_encoder("mobilenet_v2", MobileNetV2Encoder)
register_encoder("vgg16", VGG16Encoder)
register_encoder("densenet169", DenseNet169Encoder)
register_encoder("inceptionresnetv2", InceptionResNetV2Encoder)
del _b
