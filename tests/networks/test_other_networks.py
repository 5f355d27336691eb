import pytest
import torch

from monai_skinattr.networks import (
    FCDenseNet,
    MobileNetV2UNet,
    ResNet50AttentionUNet,
    SwinUNet,
    UNet,
    count_parameters,
    freeze_encoder,
)

SMALL_SWIN = {"embed_dim": 12, "num_heads": (1, 2, 2, 4)}
SMALL_DENSE = {"down_blocks": (2, 3), "bottleneck_layers": 2, "growth_rate": 4, "first_channels": 8}


def _roundtrip(net, x, tmp_path, trace=False):
    net.eval()
    module = torch.jit.trace(net, x) if trace else torch.jit.script(net)
    torch.jit.save(module, str(tmp_path / "net.ts"))
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "net.ts"))(x), net(x), atol=1e-5, rtol=0)


def test_basic_unet_levels_and_export(tmp_path):
    net = UNet(in_channels=1, out_channels=4, features=(8, 16, 32, 64, 128))
    x = torch.rand(2, 1, 48, 32)
    assert [f.shape[1:] for f in net.encoder(x)] == [(8, 48, 32), (16, 24, 16), (32, 12, 8), (64, 6, 4), (128, 3, 2)]
    assert net(x).shape == (2, 4, 48, 32)
    _roundtrip(net, x, tmp_path)
    full = UNet(1, 1)
    assert full.encoder.out_channels == [64, 128, 256, 512, 1024]


def test_resnet50_attention_unet(tmp_path):
    net = ResNet50AttentionUNet(in_channels=1, out_channels=2)
    x = torch.rand(1, 1, 64, 96)
    assert [f.shape[1] for f in net.encoder(x)] == [64, 256, 512, 1024, 2048]
    assert net(x).shape == (1, 2, 64, 96)
    assert len(net.decoder.gated) == 4 and len(net.decoder.plain) == 1  # no skip on the last level
    _roundtrip(net, x, tmp_path)


def test_resnet50_encoder_weights_from_local_file(tmp_path):
    from torchvision.models import resnet50

    ref = resnet50(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r50.pth")
    net = ResNet50AttentionUNet(encoder_weights=tmp_path / "r50.pth")
    assert torch.equal(net.encoder.stem[0].weight, ref.conv1.weight)


def test_swin_unet_paper_size_and_shapes(tmp_path):
    assert round(count_parameters(SwinUNet(in_channels=3, out_channels=9), bn_statistics=False) / 1e6, 2) == 27.17
    net = SwinUNet(in_channels=1, out_channels=3, **SMALL_SWIN)
    x = torch.rand(1, 1, 64, 96)
    assert [tuple(f.shape[1:]) for f in net.encoder(x)] == [(12, 16, 24), (24, 8, 12), (48, 4, 6), (96, 2, 3)]
    assert net(x).shape == (1, 3, 64, 96)
    _roundtrip(net, x, tmp_path, trace=True)
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.rand(1, 1, 70, 64))


def test_mobilenet_unet_any_size_and_stage_freezing(tmp_path):
    net = MobileNetV2UNet(out_channels=2)
    for shape in ((1, 3, 128, 128), (2, 3, 67, 45)):
        assert net(torch.rand(*shape)).shape == (shape[0], 2, *shape[2:])
    _roundtrip(net, torch.rand(1, 3, 64, 80), tmp_path)

    net.set_trainable("last").train()
    trainable = [any(p.requires_grad for p in s.parameters()) for s in net.encoder.stages]
    assert trainable == [False, False, False, False, True]
    assert not net.encoder.stages[0].training and net.encoder.stages[4].training
    before = {k: v.clone() for k, v in net.encoder.stages[0].state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net(torch.rand(2, 3, 64, 64)).mean().backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in net.encoder.stages[0].state_dict().items())
    net.set_trainable("all")
    assert all(p.requires_grad for p in net.parameters())
    assert all(not p.requires_grad for p in net.set_trainable("frozen").encoder.parameters())
    with pytest.raises(ValueError, match="mode"):
        net.set_trainable("half")
    assert freeze_encoder(MobileNetV2UNet()).encoder_frozen


def test_fc_densenet_103_size_and_same_size_output(tmp_path):
    assert round(count_parameters(FCDenseNet(out_channels=11)) / 1e6, 1) == 9.4
    net = FCDenseNet(in_channels=3, out_channels=3, **SMALL_DENSE)
    for shape in ((1, 3, 32, 32), (2, 3, 13, 17)):
        assert net(torch.rand(*shape)).shape == shape
    _roundtrip(net, torch.rand(1, 3, 13, 17), tmp_path)
