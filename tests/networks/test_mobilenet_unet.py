"""MobileNetV2UNet as METHODS.md §5 gives it: topology, the report's parameter counts, weights, export."""

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2

from monai_skinattr.networks import MobileNetV2Encoder, MobileNetV2UNet, count_parameters, freeze_encoder

# mode -> (trainable, non-trainable) torch parameters, BatchNorm running statistics not counted (the report's table)
COUNTS = {"frozen": (4_771_585, 2_223_872), "last": (6_452_929, 542_528), "all": (6_995_457, 0)}


def _split(net: nn.Module) -> tuple[int, int]:
    trainable = count_parameters(net, bn_statistics=False, trainable_only=True)
    return trainable, count_parameters(net, bn_statistics=False) - trainable


def test_topology_of_the_method():
    net = MobileNetV2UNet()
    assert isinstance(net.encoder, MobileNetV2Encoder)
    assert net.encoder.out_channels == [16, 24, 32, 96, 1280]
    assert sum(p.numel() for p in net.encoder.parameters()) == 2_223_872  # all of mobilenet_v2().features
    assert sum(p.numel() for p in net.encoder.stages[4].parameters()) == 1_681_344  # features[14:19]
    ups = [(s.up.in_channels, s.up.out_channels, s.up.kernel_size, s.up.stride) for s in net.decoder.stages]
    assert ups == [(1280, 512, (2, 2), (2, 2)), (256, 256, (2, 2), (2, 2)), (128, 128, (2, 2), (2, 2))]
    convs = [s.block.conv for s in net.decoder.stages]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.dilation, c.padding) for c in convs] == [
        (608, 256, (3, 3), (2, 2), (2, 2)),
        (288, 128, (3, 3), (2, 2), (2, 2)),
        (152, 64, (3, 3), (2, 2), (2, 2)),
    ]
    assert all(isinstance(s.block.bn, nn.BatchNorm2d) and isinstance(s.block.relu, nn.ReLU) for s in net.decoder.stages)
    assert (net.head.in_channels, net.head.out_channels, net.head.kernel_size) == (64, 1, (1, 1))

    x = torch.rand(2, 3, 128, 128)
    feats = net.eval().encoder(x)
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 64, 64), (24, 32, 32), (32, 16, 16), (96, 8, 8), (1280, 4, 4)]
    assert net(x).shape == (2, 1, 128, 128)
    assert MobileNetV2UNet(dilation=1).decoder.stages[0].block.conv.padding == (1, 1)


def test_parameter_counts_of_the_three_phases():
    net = MobileNetV2UNet()
    assert count_parameters(net, bn_statistics=False) == 6_995_457
    assert _split(net) == COUNTS["all"]
    for mode in ("frozen", "last", "all", "last", "frozen"):
        assert _split(net.set_trainable(mode)) == COUNTS[mode], mode
    assert _split(freeze_encoder(MobileNetV2UNet())) == COUNTS["frozen"]


@pytest.mark.parametrize("mode, frozen_stages", [("frozen", 5), ("last", 4), ("all", 0)])
def test_frozen_stages_keep_batchnorm_statistics(mode, frozen_stages):
    torch.manual_seed(0)
    net = MobileNetV2UNet().set_trainable(mode).train()
    assert net.encoder_frozen == (mode == "frozen")
    assert [s.training for s in net.encoder.stages] == [i >= frozen_stages for i in range(5)]
    assert net.decoder.training and net.head.training
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net(torch.rand(2, 3, 64, 64)).mean().backward()
    opt.step()
    after = net.encoder.state_dict()
    for i in range(5):
        prefix = f"stages.{i}."
        same = all(torch.equal(before[k], after[k]) for k in after if k.startswith(prefix))
        assert same == (i < frozen_stages), (mode, i)
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()  # back to training mode: the frozen stages again stay in eval mode
    assert [s.training for s in net.encoder.stages] == [i >= frozen_stages for i in range(5)]


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be 'frozen', 'last' or 'all'"):
        MobileNetV2UNet().set_trainable("half")


def test_torchvision_weights_load_strictly(tmp_path):
    ref = mobilenet_v2(weights=None)
    state = ref.state_dict()
    assert any(k.startswith("classifier.") for k in state)  # ignored
    torch.save(state, tmp_path / "mobilenet_v2.pth")
    net = MobileNetV2UNet(encoder_weights=tmp_path / "mobilenet_v2.pth")
    assert torch.equal(net.encoder.stages[0][0][0].weight, state["features.0.0.weight"])
    assert torch.equal(net.encoder.stages[4][-1][0].weight, state["features.18.0.weight"])  # 320 -> 1280 conv
    assert torch.equal(net.encoder.stages[4][-1][1].running_var, state["features.18.1.running_var"])

    torch.save({f"backbone.{k}": v for k, v in state.items()}, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match=r"lack \d+ key\(s\).*features\.0\.0\.weight.*unexpected key\(s\).*backbone"):
        MobileNetV2UNet(encoder_weights=tmp_path / "renamed.pth")
    torch.save({**state, "features.18.0.weight": torch.zeros(640, 320, 1, 1)}, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"another shape.*features\.18\.0\.weight: \(640, 320, 1, 1\)"):
        MobileNetV2UNet(encoder_weights=tmp_path / "shape.pth")
    with pytest.raises(FileNotFoundError):
        MobileNetV2UNet(encoder_weights=tmp_path / "absent.pth")


@pytest.mark.parametrize("in_channels", [1, 4])
def test_in_channels(in_channels, tmp_path):
    net = MobileNetV2UNet(in_channels=in_channels, out_channels=2).eval()
    assert net.encoder.stages[0][0][0].in_channels == in_channels
    assert net(torch.rand(1, in_channels, 64, 96)).shape == (1, 2, 64, 96)
    torch.save(mobilenet_v2(weights=None).state_dict(), tmp_path / "mobilenet_v2.pth")
    with pytest.raises(ValueError, match=f"3 \\(RGB\\) input channels.*in_channels={in_channels}"):
        MobileNetV2UNet(in_channels=in_channels, encoder_weights=tmp_path / "mobilenet_v2.pth")


def test_torchscript_roundtrip(tmp_path):
    net = MobileNetV2UNet().eval()
    x = torch.rand(2, 3, 128, 128)
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net.ts"))
    loaded = torch.jit.load(str(tmp_path / "net.ts"))
    y = net(x)
    assert y.shape == (2, 1, 128, 128)
    torch.testing.assert_close(loaded(x), y, atol=1e-5, rtol=0)
