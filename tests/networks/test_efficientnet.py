import re

import pytest
import torch
from monai.networks.nets import EfficientNetBN

from monai_skinattr.networks import (
    EfficientNetEncoder,
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


def _lukemelas_keys(state):
    """MONAI ``EfficientNetBN`` keys -> the flat ``_blocks.<i>`` keys of the file MONAI downloads."""
    return {re.sub(r"(.+)\.\d+(\.\d+\..+)", r"\1\2", k): v for k, v in state.items()}


def test_encoder_weights_from_local_file(tmp_path):
    torch.manual_seed(3)
    ref = EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=2)
    ref._bn1.running_var.uniform_(0.5, 2.0)  # BatchNorm statistics are loaded too
    path = tmp_path / "effb0.pth"
    torch.save(ref.state_dict(), path)
    net = EffUNet(encoder_weights=path)
    assert torch.equal(net.encoder.stem.conv.weight, ref._conv_stem.weight)
    assert torch.equal(
        net.encoder.levels[1].block._expand_conv.weight, ref.state_dict()["_blocks.2.3._expand_conv.weight"]
    )
    assert torch.equal(net.encoder.tail[-2].running_var, ref._bn1.running_var)

    # the file MONAI downloads for EfficientNetBN(pretrained=True): flat block keys, maybe no num_batches_tracked
    flat = {k: v for k, v in _lukemelas_keys(ref.state_dict()).items() if "num_batches_tracked" not in k}
    assert "_blocks.3._expand_conv.weight" in flat
    torch.save(flat, tmp_path / "efficientnet-b0-355c32eb.pth")
    other = EffLinkNet(encoder_weights=tmp_path / "efficientnet-b0-355c32eb.pth")
    for (k, a), b in zip(net.encoder.state_dict().items(), other.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_encoder_weights_load_as_monai_loads_them(tmp_path, monkeypatch):
    """Our key mapping of the downloaded file agrees with MONAI's own ``pretrained=True`` loading."""
    import monai.networks.nets.efficientnet as monai_effnet

    torch.manual_seed(4)
    flat = _lukemelas_keys(EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=2).state_dict())
    torch.save(flat, tmp_path / "efficientnet-b0-355c32eb.pth")
    monkeypatch.setattr(monai_effnet.model_zoo, "load_url", lambda *args, **kwargs: flat)
    monai_net = EfficientNetBN("efficientnet-b0", pretrained=True, spatial_dims=2, norm=("batch", {"eps": 1e-3}))
    monai_net.set_swish(memory_efficient=False)
    ours = EfficientNetEncoder(weights=tmp_path / "efficientnet-b0-355c32eb.pth").eval()
    for (k, a), b in zip(monai_net.state_dict().items(), flat.values(), strict=True):
        assert torch.equal(a, b), k  # MONAI took every tensor of the file
    top = []
    monai_net._bn1.register_forward_hook(lambda module, args, out: top.append(out))
    x = torch.rand(1, 3, 64, 64)
    monai_net.eval()(x)
    torch.testing.assert_close(ours(x)[-1], monai_net._swish(top[0]))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda sd: {k: v for k, v in sd.items() if "_blocks.3" not in k}, "lack"),
        (lambda sd: {f"backbone.{k}": v for k, v in sd.items()}, "lack .* unexpected"),
        (lambda sd: {**sd, "_extra.weight": torch.zeros(1)}, "unexpected"),
        (lambda sd: {**sd, "_conv_stem.weight": torch.zeros(32, 1, 3, 3)}, "another shape"),
    ],
    ids=["missing", "renamed", "unexpected", "shape"],
)
def test_encoder_weights_must_fit(tmp_path, edit, match):
    state = EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=2).state_dict()
    torch.save(edit(dict(state)), tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=match):
        EffLinkNet(encoder_weights=tmp_path / "bad.pth")
    # the classifier is ignored, whatever its size
    state["_fc.weight"] = torch.zeros(3, 1280)
    state["_fc.bias"] = torch.zeros(3)
    torch.save(_lukemelas_keys(state), tmp_path / "ok.pth")
    EfficientNetEncoder(weights=tmp_path / "ok.pth")
