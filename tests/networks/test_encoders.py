import pytest
import torch
from torch import nn

from monai_skinattr.networks import (
    EffLinkNet,
    EffUNet,
    MobileNetV2Encoder,
    ResNet50Encoder,
    StagedEncoder,
    get_encoder,
    list_encoders,
    register_encoder,
)
from monai_skinattr.networks import encoders as encoders_module


def test_registered_names():
    names = list_encoders()
    assert names == sorted(names)
    assert {f"efficientnet-b{i}" for i in range(8)} | {"resnet50", "mobilenet_v2"} <= set(names)


@pytest.mark.parametrize("name", ["efficientnet-b0", "efficientnet-b3", "resnet50", "mobilenet_v2"])
def test_every_encoder_gives_strides_2_to_32(name):
    enc = get_encoder(name, in_channels=2).eval()
    feats = enc(torch.rand(1, 2, 64, 96))
    assert [f.shape[1] for f in feats] == enc.out_channels
    assert [tuple(f.shape[2:]) for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]


@pytest.mark.parametrize("cls", [EffUNet, EffLinkNet])
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_u_and_link_decoders_take_any_encoder(cls, name, tmp_path):
    net = cls(in_channels=3, out_channels=2, encoder=name).eval()
    assert isinstance(net.encoder, ResNet50Encoder if name == "resnet50" else MobileNetV2Encoder)
    x = torch.rand(1, 3, 64, 64)
    y = net(x)
    assert y.shape == (1, 2, 64, 64)
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net.ts"))
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "net.ts"))(x), y, atol=1e-5, rtol=0)


def test_unknown_encoder_lists_the_registered_ones():
    with pytest.raises(ValueError, match="unknown encoder 'efficientnet-b9'.*efficientnet-b0.*resnet50"):
        EffUNet(encoder="efficientnet-b9")
    with pytest.raises(ValueError, match="registered encoders: .*mobilenet_v2"):
        get_encoder("vgg19")


def test_register_encoder(monkeypatch):
    monkeypatch.setattr(encoders_module, "_ENCODERS", dict(encoders_module._ENCODERS))

    @register_encoder("tiny")
    def tiny(in_channels: int, weights=None, width: int = 4) -> nn.Module:
        chans = [width * 2**i for i in range(5)]
        stages = [
            nn.Conv2d(c_in, c, 3, stride=2, padding=1)
            for c_in, c in zip([in_channels, *chans[:-1]], chans, strict=True)
        ]
        return StagedEncoder(stages, chans)

    assert "tiny" in list_encoders()
    assert get_encoder("tiny", 1, width=2).out_channels == [2, 4, 8, 16, 32]
    net = EffUNet(in_channels=1, encoder="tiny", decoder_channels=(16, 8, 8, 8, 4))
    assert net(torch.rand(2, 1, 32, 64)).shape == (2, 1, 32, 64)
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("tiny", tiny)
    register_encoder("three", lambda in_channels, weights=None: StagedEncoder([nn.Identity()] * 3, [1, 1, 1]))
    with pytest.raises(ValueError, match="need 5"):
        EffLinkNet(encoder="three")


@pytest.mark.parametrize(
    "cls, ignored", [(ResNet50Encoder, "fc."), (MobileNetV2Encoder, "classifier.")], ids=["resnet50", "mobilenet_v2"]
)
def test_torchvision_encoder_weights_strict(cls, ignored, tmp_path):
    from torchvision.models import mobilenet_v2, resnet50

    ref = (resnet50 if cls is ResNet50Encoder else mobilenet_v2)(weights=None)
    state = ref.state_dict()
    torch.save(state, tmp_path / "ok.pth")
    enc = cls(weights=tmp_path / "ok.pth")
    first = next(iter(enc.parameters()))
    assert torch.equal(first, next(iter(ref.parameters())))
    torch.save({f"model.{k}": v for k, v in state.items()}, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match="lack"):
        cls(weights=tmp_path / "renamed.pth")
    assert any(k.startswith(ignored) for k in state)


@pytest.mark.parametrize("cls", [ResNet50Encoder, MobileNetV2Encoder], ids=["resnet50", "mobilenet_v2"])
def test_torchvision_encoder_in_channels(cls, tmp_path):
    from torchvision.models import mobilenet_v2, resnet50

    for in_channels in (1, 4):  # without weights: a new first convolution
        enc = cls(in_channels=in_channels).eval()
        assert next(iter(enc.parameters())).shape[1] == in_channels
        assert [f.shape[1] for f in enc(torch.rand(1, in_channels, 64, 64))] == enc.out_channels
    torch.save((resnet50 if cls is ResNet50Encoder else mobilenet_v2)(weights=None).state_dict(), tmp_path / "w.pth")
    for in_channels in (1, 4):  # the pretrained first convolution is never replaced silently
        with pytest.raises(ValueError, match=f"{cls.__name__}: .*3 \\(RGB\\).*in_channels={in_channels}"):
            cls(in_channels=in_channels, weights=tmp_path / "w.pth")
    assert cls(in_channels=3, weights=tmp_path / "w.pth").out_channels[-1] in (2048, 320)


def test_resnet50_attention_unet_in_channels_with_weights(tmp_path):
    from torchvision.models import resnet50

    from monai_skinattr.networks import ResNet50AttentionUNet

    torch.save(resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(ValueError, match="in_channels=1"):
        ResNet50AttentionUNet(in_channels=1, encoder_weights=tmp_path / "r50.pth")


def test_mobilenet_v2_encoder_last_conv():
    assert MobileNetV2Encoder().out_channels[-1] == 320
    enc = get_encoder("mobilenet_v2", last_conv=True)
    assert enc.out_channels == [16, 24, 32, 96, 1280]
    assert sum(p.numel() for p in enc.parameters()) == 2_223_872
