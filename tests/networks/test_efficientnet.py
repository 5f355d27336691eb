import pytest
import torch
from monai.networks.nets import EfficientNetBN

from monai_skinattr.networks import (
    EffLinkNet,
    EffUNet,
    ProbabilityEnsemble,
    count_parameters,
    freeze_encoder,
    load_stage_weights,
)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return EffUNet()


@pytest.fixture(scope="module")
def linknet():
    torch.manual_seed(1)
    return EffLinkNet()


def test_tatl_table7_parameter_counts(unet, linknet):
    assert count_parameters(unet) == 10_115_501
    assert count_parameters(unet, trainable_only=True) == 10_071_501
    assert count_parameters(linknet) == 6_096_333
    assert count_parameters(linknet, trainable_only=True) == 6_049_549


def test_encoder_taps(unet):
    feats = unet.encoder(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [(96, 32, 48), (144, 16, 24), (240, 8, 12), (672, 4, 6), (1280, 2, 3)]


@pytest.mark.parametrize("cls", [EffUNet, EffLinkNet])
def test_shapes_channels_and_size_check(cls):
    net = cls(in_channels=1, out_channels=3).eval()
    assert net(torch.rand(2, 1, 96, 64)).shape == (2, 3, 96, 64)
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.rand(1, 1, 386, 512))


@pytest.mark.parametrize("export", [torch.jit.script, lambda m: torch.jit.trace(m, torch.rand(1, 3, 64, 64))])
def test_torchscript_round_trip(unet, linknet, export, tmp_path):
    for net in (unet.eval(), linknet.eval(), ProbabilityEnsemble([unet, linknet]).eval()):
        x = torch.rand(1, 3, 64, 64)
        path = tmp_path / "net.ts"
        torch.jit.save(export(net), str(path))
        loaded = torch.jit.load(str(path))
        torch.testing.assert_close(loaded(x), net(x), atol=1e-5, rtol=0)


def test_ensemble_averages_probabilities(unet, linknet):
    x = torch.rand(1, 3, 32, 32)
    unet.eval(), linknet.eval()
    expected = (torch.sigmoid(unet(x)) + torch.sigmoid(linknet(x))) / 2
    torch.testing.assert_close(ProbabilityEnsemble([unet, linknet])(x), expected)
    soft = ProbabilityEnsemble([EffUNet(out_channels=3).eval()], activation="softmax")(x)
    torch.testing.assert_close(soft.sum(1), torch.ones(1, 32, 32))
    with pytest.raises(ValueError, match="activation"):
        ProbabilityEnsemble([unet], activation="relu")
    with pytest.raises(ValueError, match="at least one"):
        ProbabilityEnsemble([])


def test_frozen_encoder_unchanged_after_step():
    torch.manual_seed(0)
    net = freeze_encoder(EffLinkNet()).train()
    assert not net.encoder.training and net.decoder.training
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    loss = net(torch.rand(2, 3, 64, 64)).mean()
    loss.backward()
    opt.step()
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(not k.startswith("encoder.") for k in changed)
    assert any(k.startswith("decoder.") for k in changed)
    freeze_encoder(net, frozen=False).train()
    assert net.encoder.training and all(p.requires_grad for p in net.parameters())
    with pytest.raises(TypeError, match="no encoder/decoder split"):
        freeze_encoder(torch.nn.Linear(2, 2))


def test_freeze_reaches_ensemble_members():
    ens = freeze_encoder(ProbabilityEnsemble([EffUNet(), EffLinkNet()]))
    assert all(not p.requires_grad for m in ens.nets for p in m.encoder.parameters())


def test_stage_weight_transfer(unet, tmp_path):
    unet.eval()
    path = tmp_path / "stage2.pt"
    torch.save({"network": unet.state_dict(), "optimizer": {}}, path)  # MONAI CheckpointSaver layout
    stage3 = EffUNet().eval()
    report = load_stage_weights(stage3, path)
    assert not report["missing"] and not report["unexpected"]
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(stage3(x), unet(x))

    three = EffUNet(out_channels=3)
    with pytest.raises(ValueError, match="shapes differ"):
        load_stage_weights(three, path)
    report = load_stage_weights(three, path, exclude=("head",))
    assert report["missing"] == [] and report["excluded"] == ["head.bias", "head.weight"]
    partial = {k: v for k, v in unet.state_dict().items() if k.startswith("encoder.")}
    with pytest.raises(ValueError, match="lacks"):
        load_stage_weights(EffUNet(), partial)
    assert load_stage_weights(EffUNet(), partial, strict=False)["missing"]
    with pytest.raises(FileNotFoundError):
        load_stage_weights(unet, tmp_path / "missing.pt")


def test_encoder_weights_from_local_file(tmp_path):
    torch.manual_seed(3)
    ref = EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=2)
    path = tmp_path / "effb0.pth"
    torch.save(ref.state_dict(), path)
    net = EffUNet(encoder_weights=path)
    assert torch.equal(net.encoder.stem.conv.weight, ref._conv_stem.weight)
    torch.save({k: v for k, v in ref.state_dict().items() if "_blocks.3" not in k}, path)
    with pytest.raises(ValueError, match="lack"):
        EffLinkNet(encoder_weights=path)
