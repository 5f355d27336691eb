"""The transfer thesis' networks (section 2.1): structure, cost, gates, skips, stochastic depth, init, pretraining."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from monai_skinattr.networks import (
    AttentionGate,
    EncoderClassifier,
    ResNet50AttentionUNet,
    ResNet50Encoder,
    SwinEncoder,
    SwinUNet,
    UNet,
    count_parameters,
    init_weights,
    thesis_network,
)
from monai_skinattr.networks.unet import _UpConv

#: small configurations that keep each network's structure (ResNet50 is always full size)
TINY = {
    "unet": {"features": (4, 8, 8, 8, 8)},
    "resnet50_attention": {"decoder_channels": (16, 8, 8, 8, 8)},
    "swin": {"embed_dim": 12, "num_heads": (1, 2, 2, 4), "window_size": 2},
}


def _encoder_macs(net: nn.Module, x: torch.Tensor) -> tuple[int, list[torch.Tensor]]:
    """Multiply-accumulates of ``net.encoder`` on ``x`` (half of torch's FLOPs) and the encoder features."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        features = net.encoder(x)
    return counter.get_total_flops() // 2, features


def test_unet_structure_and_encoder_cost_at_224():
    net = UNet(in_channels=3, out_channels=1).eval()
    stem = net.encoder.stages[0][0]
    assert isinstance(stem, nn.Conv2d) and (stem.in_channels, stem.out_channels, stem.kernel_size) == (3, 64, (3, 3))
    macs, features = _encoder_macs(net, torch.rand(1, 3, 224, 224))
    assert [tuple(f.shape[1:]) for f in features] == [(64 * 2**i, 224 >> i, 224 >> i) for i in range(5)]
    # the thesis' "14.9 GFLOPs" (Table 2.4) are multiply-accumulates: stem 86.7 M + five levels
    assert macs == 14_884_208_640
    assert count_parameters(net.encoder, bn_statistics=False) == 18_884_096
    assert count_parameters(EncoderClassifier("unet", 1000), bn_statistics=False) == 19_909_096  # thesis 19.9 M


def test_up_convolution_is_bilinear_then_2x2_conv_padded_after():
    assert isinstance(UNet(1, 1, features=(4, 8, 8, 8, 8)).decoder.stages[0].up, _UpConv)
    up = _UpConv(1, 1)
    assert isinstance(up[0], nn.Upsample) and up[0].mode == "bilinear"
    conv = up[2]
    nn.init.zeros_(conv.bias)
    x = torch.rand(1, 1, 3, 5)
    bilinear = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # output (i, j) reads (i, j): nothing is padded before the map
        torch.testing.assert_close(up(x), bilinear)
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # output (i, j) reads (i + 1, j + 1): the padding row/column is after it
        y = up(x)
    assert y.shape == (1, 1, 6, 10)
    torch.testing.assert_close(y[..., :-1, :-1], bilinear[..., 1:, 1:])
    assert not y[..., -1, :].any() and not y[..., :, -1].any()


def test_attention_gate_is_computed_at_the_coarse_resolution():
    gate = AttentionGate(gate_channels=8, skip_channels=4).eval()
    x, skip = torch.rand(2, 8, 3, 5), torch.rand(2, 4, 6, 10)
    with torch.no_grad():
        alpha = gate.coefficients(x, skip)
        out = gate(x, skip)
    assert alpha.shape == (2, 4, 3, 5) and bool(((alpha > 0) & (alpha < 1)).all())
    upsampled = alpha.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(out, upsampled * skip)


def test_resnet50_attention_unet_gates_levels_and_224(tmp_path):
    net = thesis_network("resnet50_attention", in_channels=3, out_channels=2).eval()
    assert [lvl.convs.conv_1.conv.out_channels for lvl in net.decoder.gated] == [256, 128, 64, 32]
    assert len(net.decoder.plain) == 1 and net.decoder.out_channels == 16  # the last level has no skip
    sizes = []
    hooks = [lvl.gate.psi.register_forward_hook(lambda m, i, o: sizes.append(o.shape[1:])) for lvl in net.decoder.gated]
    x = torch.rand(1, 3, 224, 224)
    macs, features = _encoder_macs(net, x)
    with torch.no_grad():
        assert net.head(net.decoder(features)).shape == (1, 2, 224, 224)
    for h in hooks:
        h.remove()
    # coefficients per skip channel at the gating signal's resolution: half the skip's (1/16 for the 1/8 skip...)
    assert sizes == [(1024, 7, 7), (512, 14, 14), (256, 28, 28), (64, 56, 56)]
    assert macs == 4_087_136_256  # torchvision's ResNet50 features; the thesis quotes He et al.'s 3.8 G
    assert count_parameters(net, bn_statistics=False) == 58_443_922
    assert count_parameters(EncoderClassifier("resnet50_attention", 1000), bn_statistics=False) == 25_557_032


def test_resnet50_stochastic_depth():
    enc = ResNet50Encoder(drop_path=0.1)
    blocks = [block for layer in enc.layers for block in layer]
    torch.testing.assert_close(torch.tensor([b.drop_path.p for b in blocks]), torch.linspace(0, 0.1, 16))
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.manual_seed(0)
        enc.train()  # batch statistics: the same input gives the same output unless a branch is dropped
        assert not torch.equal(enc(x)[-1], enc(x)[-1])
        enc.eval()
        torch.testing.assert_close(enc(x)[-1], enc(x)[-1])
        for b in blocks:
            b.drop_path.p = 0.0
        enc.train()
        torch.testing.assert_close(enc(x)[-1], enc(x)[-1])


def test_swin_skips_are_each_level_input_and_224():
    net = SwinUNet(in_channels=3, out_channels=2).eval()
    inputs = []
    hooks = [s.register_forward_pre_hook(lambda m, a: inputs.append(a[0])) for s in net.encoder.stages]
    x = torch.rand(1, 3, 224, 224)
    macs, features = _encoder_macs(net, x)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        assert net.head(net.decoder(features)).shape == (1, 2, 224, 224)
        embedded = net.encoder.patch_embed(x)
    assert [tuple(f.shape[1:]) for f in features] == [(96, 56, 56), (192, 28, 28), (384, 14, 14), (768, 7, 7)]
    torch.testing.assert_close(features[0], embedded)  # Cao et al.: the skip at 1/4 is the patch embedding
    for skip, level_input in zip(features[:3], inputs[:3], strict=True):
        assert torch.equal(skip, level_input)
    assert macs == 3_073_029_120  # the thesis' Table 2.4 prints 31 (3.1 G)
    assert count_parameters(EncoderClassifier("swin", 1000), bn_statistics=False) == 21_182_386  # thesis 21.2 M


def test_swin_stochastic_depth():
    torch.manual_seed(0)
    net = SwinUNet(in_channels=1, out_channels=1, drop_path=0.5, **TINY["swin"])
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for s in net.encoder.stages for b in s.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.5, 8))
    decoder_rates = [getattr(b.drop_path, "drop_prob", 0.0) for s in net.decoder.stages for b in s.blocks]
    assert decoder_rates == pytest.approx(rates[4:6] + rates[2:4] + rates[:2])  # 1/16, 1/8, 1/4: mirrored
    x = torch.rand(4, 1, 64, 64)
    with torch.no_grad():
        net.eval()
        torch.testing.assert_close(net(x), net(x))
        net.train()
        assert not torch.equal(net(x), net(x))
        assert all(isinstance(b.drop_path, nn.Identity) for s in SwinEncoder(**TINY["swin"]).stages for b in s.blocks)


def test_init_weights_schemes():
    torch.manual_seed(0)
    conv = init_weights(nn.Conv2d(64, 128, 3), "he")
    torch.testing.assert_close(conv.weight.std(), torch.tensor((2 / 576) ** 0.5), rtol=0.02, atol=0)
    assert not conv.bias.any()
    swin_conv = init_weights(nn.Conv2d(64, 128, 3), "swin")
    torch.testing.assert_close(swin_conv.weight.std(), torch.tensor((1 / 3 / 576) ** 0.5), rtol=0.02, atol=0)
    linear = init_weights(nn.Linear(256, 512), "swin")
    torch.testing.assert_close(linear.weight.std(), torch.tensor(0.02), rtol=0.02, atol=0)
    assert not linear.bias.any()
    norms = init_weights(nn.Sequential(nn.BatchNorm2d(4), nn.LayerNorm(4)), "he")
    with torch.no_grad():
        for m in norms:
            m.weight.fill_(3.0)
            m.bias.fill_(3.0)
    for m in init_weights(norms, "swin"):
        assert bool((m.weight == 1).all()) and not m.bias.any()
    with pytest.raises(ValueError, match="unknown initialisation scheme 'xavier'"):
        init_weights(conv, "xavier")


@pytest.mark.parametrize("name", ["unet", "resnet50_attention", "swin"])
def test_constructors_apply_the_thesis_init(name):
    torch.manual_seed(0)
    net = thesis_network(name, **TINY[name])
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert not any(m.bias.any() for m in layers if m.bias is not None)  # PyTorch's default biases are not 0
    if name == "swin":
        big = net.encoder.stages[-1].blocks[0].mlp.linear1
        torch.testing.assert_close(big.weight.std(), torch.tensor(0.02), rtol=0.05, atol=0)
        final = net.decoder.final.linear.weight  # §2.1: the final patch expanding as the patch embedding, gamma 1/3
        expected = (1 / (3 * final.shape[1])) ** 0.5
        torch.testing.assert_close(final.std(), torch.tensor(expected), rtol=0.05, atol=0)
    else:
        big = max((m for m in layers if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
        fan_in = big.weight[0].numel()
        torch.testing.assert_close(big.weight.std(), torch.tensor((2 / fan_in) ** 0.5), rtol=0.05, atol=0)


@pytest.mark.parametrize("name", ["unet", "resnet50_attention", "swin"])
def test_encoder_classifier_checkpoint_loads_into_the_segmentation_network(name, tmp_path):
    classifier = EncoderClassifier(name, num_classes=5, **TINY[name])
    x = torch.rand(2, 3, 64, 64)
    assert classifier(x).shape == (2, 5)
    torch.save(classifier.encoder.state_dict(), tmp_path / "encoder.pt")
    net = thesis_network(name, out_channels=3, **TINY[name])
    assert net.encoder.state_dict().keys() == classifier.encoder.state_dict().keys()
    net.encoder.load_state_dict(torch.load(tmp_path / "encoder.pt", weights_only=True))
    net.eval()
    classifier.eval()
    with torch.no_grad():
        for ours, theirs in zip(net.encoder(x), classifier.encoder(x), strict=True):
            torch.testing.assert_close(ours, theirs)
        assert net(x).shape == (2, 3, 64, 64)
    export = torch.jit.trace(classifier, x) if name == "swin" else torch.jit.script(classifier)
    torch.testing.assert_close(export(x), classifier(x))


def test_thesis_network_names_and_drop_path():
    assert isinstance(thesis_network("unet", in_channels=1, **TINY["unet"]), UNet)
    assert isinstance(EncoderClassifier("resnet50_attention", 3, drop_path=0.1).encoder, ResNet50Encoder)
    assert isinstance(
        thesis_network("resnet50_attention", drop_path=0.1, **TINY["resnet50_attention"]), ResNet50AttentionUNet
    )
    with pytest.raises(ValueError, match="unknown thesis network 'vgg'.*unet, resnet50_attention, swin"):
        thesis_network("vgg")
    with pytest.raises(ValueError, match="no residual branches"):
        EncoderClassifier("unet", 10, drop_path=0.1)
