"""
The four ImageNet backbones of TATL Tables 6-8 besides EfficientNet-b0 (VGG16, ResNet152, DenseNet169,
Inception-ResNet-v2): their taps, their U- and Link-networks, strict loading of the released weight formats, and
Table 7's parameter counts. Each big network is built once per module.
"""

import re

import pytest
import torch
from torch import nn

from monai_skinattr.networks import (
    DenseNet169Encoder,
    EffLinkNet,
    EffUNet,
    InceptionResNetV2Encoder,
    ResNet152Encoder,
    VGG16Encoder,
    count_parameters,
    get_encoder,
)

#: registered name -> (class, channels at strides 2, 4, 8, 16, 32, prefix of the ignored classifier keys)
BACKBONES = {
    "vgg16": (VGG16Encoder, [128, 256, 512, 512, 512], "classifier."),
    "resnet152": (ResNet152Encoder, [64, 256, 512, 1024, 2048], "fc."),
    "densenet169": (DenseNet169Encoder, [64, 256, 512, 1280, 1664], "classifier."),
    "inceptionresnetv2": (InceptionResNetV2Encoder, [64, 192, 320, 1088, 1536], "classif."),
}
NAMES = list(BACKBONES)


def _imagenet_classifier(name: str) -> nn.Module:
    """The whole ImageNet classifier (1000 classes) each backbone comes from, randomly initialised."""
    if name == "inceptionresnetv2":
        import timm

        return timm.create_model("inception_resnet_v2", pretrained=False)
    if name == "efficientnet-b0":
        from monai.networks.nets import EfficientNetBN

        return EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=2)
    from torchvision import models

    return getattr(models, name)(weights=None)


@pytest.fixture(scope="module")
def built():
    """``built(kind, name)``: a network of ``kind`` ("unet", "linknet", "classifier") built on first use."""
    cache = {}
    makers = {
        "unet": lambda name: EffUNet(3, 1, encoder=name),
        "linknet": lambda name: EffLinkNet(3, 1, encoder=name),
        "classifier": _imagenet_classifier,
    }

    def get(kind: str, name: str) -> nn.Module:
        if (kind, name) not in cache:
            torch.manual_seed(0)
            cache[kind, name] = makers[kind](name).eval()
        return cache[kind, name]

    return get


def _expected_shapes(channels: list[int], height: int, width: int) -> list[tuple[int, int, int]]:
    """(channels, height, width) of the five feature maps at exactly strides 2, 4, 8, 16 and 32."""
    return [(c, height // s, width // s) for c, s in zip(channels, (2, 4, 8, 16, 32), strict=True)]


@pytest.mark.parametrize("name", NAMES)
def test_taps_strides_and_u_link_networks(built, name):
    cls, channels, _ = BACKBONES[name]
    unet, linknet = built("unet", name), built("linknet", name)
    assert type(unet.encoder) is cls and type(linknet.encoder) is cls
    assert unet.encoder.out_channels == channels
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        feats = unet.encoder(x)
        assert [tuple(f.shape[1:]) for f in feats] == _expected_shapes(channels, 64, 96)
        assert unet(x).shape == (1, 1, 64, 96)
        assert linknet(x).shape == (1, 1, 64, 96)


@pytest.mark.parametrize("name", NAMES)
def test_any_in_channels_without_weights(name):
    enc = get_encoder(name, in_channels=1).eval()
    first = next(m for m in enc.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 1
    with torch.no_grad():
        feats = enc(torch.rand(1, 1, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == _expected_shapes(enc.out_channels, 64, 64)


def test_densenet_skips_are_transition_relus_and_the_deepest_map_is_relu(built):
    enc = built("unet", "densenet169").encoder
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, 64, 64))
    assert all(f.min() >= 0 for f in feats)
    for stage in enc.stages[1:4]:  # ... BatchNorm, ReLU | 1x1 conv, average pool, next dense block ...
        assert isinstance(stage[-2], nn.BatchNorm2d) and isinstance(stage[-1], nn.ReLU)
    assert all(isinstance(stage[0], nn.Conv2d) and isinstance(stage[1], nn.AvgPool2d) for stage in enc.stages[2:])


# ---------------------------------------------------------------------------------------------------------------
# strict loading of the released formats


def _old_densenet_keys(state: dict) -> dict:
    """torchvision DenseNet keys in the format of its released files (``densenet169-b2777c0a.pth``, 2017): dense
    layers' ``norm.1``/``conv.2``... and no ``num_batches_tracked``."""
    old = {}
    for k, v in state.items():
        if not k.endswith("num_batches_tracked"):
            old[re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k)] = v
    # torchvision's own pattern (``_load_state_dict`` in torchvision/models/densenet.py) maps them back
    pattern = re.compile(
        r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
    )
    back = {(m.group(1) + m.group(2)) if (m := pattern.match(k)) else k for k in old}
    assert back == {k for k in state if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    return old


def _save(state: dict, path) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)


def _assert_loaded(enc: nn.Module, expected: list) -> None:
    got = [v for k, v in enc.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):  # same order: the encoders keep the source networks' module order
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_weights_round_trip_and_strictness(built, name, tmp_path):
    cls, _, ignored = BACKBONES[name]
    # the whole ImageNet network's state dict, classifier included at its real values. The vectors (biases,
    # BatchNorm weights and statistics), initialised to constants, are drawn anew, so that any encoder tensor loaded
    # into the wrong place, or not loaded, cannot go unnoticed (the kernels are random draws already).
    torch.manual_seed(1)
    state = {
        k: torch.randn(v.shape) + 2 * ("running_var" in k)
        if v.is_floating_point() and v.dim() == 1 and not k.startswith(ignored)
        else v
        for k, v in built("classifier", name).state_dict().items()
    }
    expected = [v for k, v in state.items() if not k.startswith(ignored) and not k.endswith("num_batches_tracked")]
    heads = [tuple(v.flatten()[:3].tolist()) for v in expected]
    assert len(set(heads)) == len(heads)  # no two encoder tensors alike
    if name == "densenet169":  # the released file's old keys, and a saved densenet169() (new keys)
        files = {"densenet169-b2777c0a.pth": _old_densenet_keys(state), "densenet169-new-keys.pth": state}
    elif name == "inceptionresnetv2":  # the hub's safetensors, and a torch.save'd state dict
        files = {"model.safetensors": state, "inception_resnet_v2.pth": state}
    else:
        files = {{"vgg16": "vgg16-397923af.pth", "resnet152": "resnet152-394f9c45.pth"}[name]: state}
    for file, content in files.items():
        _save(content, tmp_path / file)
        _assert_loaded(cls(weights=tmp_path / file), expected)
        with pytest.raises(ValueError, match=rf"{cls.__name__}: .*3 \(RGB\).*in_channels=4"):
            cls(in_channels=4, weights=tmp_path / file)
        (tmp_path / file).unlink()  # VGG16's is 0.55 GB

    # The refusals. The loader ignores the classifier keys present or absent, so these files leave them out (VGG16's
    # classifier alone is 123.6M floats); each message names exactly the one fault.
    source = {k: v for k, v in next(iter(files.values())).items() if not k.startswith(ignored)}  # released format
    removed = [k for k in source if k.endswith(".weight")][-3]
    path = tmp_path / "missing.pth"
    _save({k: v for k, v in source.items() if k != removed}, path)
    msg = rf"'{re.escape(str(path))}' do not fit [^:]*: lack 1 key\(s\) of the encoder, e\.g\. \['[^']*'\]\.$"
    with pytest.raises(ValueError, match=msg):
        cls(weights=path)
    path.unlink()
    reshaped = {k: v[..., :-1] if k == removed else v for k, v in source.items()}
    path = tmp_path / "reshaped.pth"
    _save(reshaped, path)
    msg = rf"'{re.escape(str(path))}' do not fit [^:]*: have 1 tensor\(s\) of another shape \(file vs encoder\)"
    with pytest.raises(ValueError, match=msg + rf", e\.g\. \['{re.escape(removed)}: .*\]\.$"):
        cls(weights=path)
    path.unlink()  # pytest keeps the last runs' temporary folders


# ---------------------------------------------------------------------------------------------------------------
# TATL Table 7


def _bias_free_conv_channels(net: nn.Module) -> int:
    return sum(m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d) and m.bias is None)


def _bn_scales(net: nn.Module) -> int:
    return sum(m.num_features for m in net.modules() if isinstance(m, nn.BatchNorm2d) and m.weight is not None)


def test_tatl_table7_backbone_parameter_counts(built):
    """
    TATL Table 7 counts the whole ImageNet classifiers as Keras does (trainable + non-trainable, i.e. with the
    BatchNorm moving mean and variance): ``count_parameters(net, bn_statistics=True)``. Where Keras' topology
    differs from torchvision's / timm's / MONAI's, the difference is exactly that topology's size.
    """
    effb0 = built("classifier", "efficientnet-b0")
    rows = [  # architecture, registered name, paper, ours, paper - ours explained, reason
        ("VGG16", "vgg16", 138_357_544, 138_357_544, 0, "same topology"),
        (
            "ResNet-151 (ResNet152)",
            "resnet152",
            60_419_944,
            60_344_232,
            _bias_free_conv_channels(built("classifier", "resnet152")),
            "Keras Applications' convolutions have biases, torchvision's (each followed by BatchNorm) do not",
        ),
        (
            "ResNet-v2 (Inception-ResNet-v2)",
            "inceptionresnetv2",
            55_873_736,
            55_904_008,
            -_bn_scales(built("classifier", "inceptionresnetv2")),
            "Keras' BatchNorm has no scale (gamma, scale=False), timm's has",
        ),
        ("DenseNet-169", "densenet169", 14_307_880, 14_307_880, 0, "same topology"),
        (
            "EfficientNetb0",
            "efficientnet-b0",
            5_330_571,
            5_330_564,
            2 * effb0._conv_stem.in_channels + 1,
            "Keras' input Normalization layer holds mean (3), variance (3) and count (1), MONAI has none",
        ),
    ]
    lines = ["| architecture | paper | ours | difference | reason |", "|---|---:|---:|---:|---|"]
    for arch, name, paper, ours, explained, reason in rows:
        counted = count_parameters(built("classifier", name), bn_statistics=True)
        lines.append(f"| {arch} | {paper:,} | {counted:,} | {paper - counted:+,} | {reason} |")
        assert counted == ours, arch
        assert paper - counted == explained, f"{arch}: {reason}"
    print("\nTATL Table 7, ImageNet classifiers (1000 classes), BatchNorm statistics counted:\n" + "\n".join(lines))
    assert (_bias_free_conv_channels(built("classifier", "vgg16")), _bn_scales(built("classifier", "vgg16"))) == (0, 0)

    lines = ["| backbone | U-shape | Link-shape | U trainable | Link trainable |", "|---|---:|---:|---:|---:|"]
    for name in NAMES:
        u, link = built("unet", name), built("linknet", name)
        counts = [count_parameters(u), count_parameters(link)]
        counts += [count_parameters(u, bn_statistics=False), count_parameters(link, bn_statistics=False)]
        lines.append(f"| {name} | " + " | ".join(f"{c:,}" for c in counts) + " |")
    print("\nU- and Link-networks, one output channel (not in the paper):\n" + "\n".join(lines))
