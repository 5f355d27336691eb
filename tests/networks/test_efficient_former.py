import pytest
import torch

from monai_skinattr.networks import EffFormerISCF, EfficientAttention, InterScaleContextFusion, count_parameters

SMALL = {"dims": (16, 32, 64), "depths": (1, 1, 1)}
#: parameters of the default EffFormerISCF (dims 128/320/512) and of SMALL: the count before the ablation switches
#: (16,569,821 / 178,173) less ISCF's never-used attention reprojections (787,968 / 12,480).
DEFAULT_PARAMS = 15_781_853
SMALL_PARAMS = 165_693
VARIANTS = [{"skip": "concat"}, {"fused_scales": 1}, {"fused_scales": 2}, {"fused_scales": 3}]


def _roundtrip(net, x, tmp_path):
    net.eval()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net.ts"))
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "net.ts"))(x), net(x), atol=1e-5, rtol=0)


def _params(net):
    return sum(p.numel() for p in net.parameters())


def test_efficient_attention_matches_its_equations():
    torch.manual_seed(0)
    attn = EfficientAttention(channels=6, key_channels=4, value_channels=4, heads=2)
    x = torch.rand(2, 6, 3, 5)
    q = attn.queries(x).reshape(2, 2, 2, 15)
    k = attn.keys(x).reshape(2, 2, 2, 15)
    v = attn.values(x).reshape(2, 2, 2, 15)
    heads = []
    for h in range(2):
        qh = q[:, h].softmax(dim=1)  # over channels
        kh = k[:, h].softmax(dim=2)  # over tokens
        heads.append((kh @ v[:, h].transpose(1, 2)).transpose(1, 2) @ qh)
    expected = attn.reprojection(torch.cat(heads, dim=1).reshape(2, 4, 3, 5))
    torch.testing.assert_close(attn(x), expected)
    with pytest.raises(ValueError, match="divide by heads"):
        EfficientAttention(4, 3, 4, heads=2)


def test_iscf_refines_every_scale():
    iscf = InterScaleContextFusion([8, 16, 32])
    feats = [torch.rand(1, 8, 16, 16), torch.rand(1, 16, 8, 8), torch.rand(1, 32, 4, 4)]
    out = iscf(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    assert all(not torch.equal(o, f) for o, f in zip(out, feats, strict=True))


@pytest.mark.parametrize("channels", [[8], [8, 16], [8, 16, 32, 32]])
def test_iscf_any_number_of_scales(channels, tmp_path):
    iscf = InterScaleContextFusion(channels).eval()
    feats = [torch.rand(2, c, 16 >> i, 12 >> i) for i, c in enumerate(channels)]
    out = iscf(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    assert all(not torch.equal(o, f) for o, f in zip(out, feats, strict=True))
    scripted = torch.jit.script(iscf)
    for a, b in zip(scripted(feats), out, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="expects"):
        iscf(feats + [feats[-1]])


def test_iscf_needs_a_scale():
    with pytest.raises(ValueError, match="at least one scale"):
        InterScaleContextFusion([])


def test_eff_former_iscf(tmp_path):
    net = EffFormerISCF(in_channels=3, out_channels=2, dims=(8, 16, 32), depths=(1, 1, 1))
    x = torch.rand(1, 3, 64, 48)
    assert [f.shape[1:] for f in net.encoder(x)] == [(8, 16, 12), (16, 8, 6), (32, 4, 3)]
    assert net(x).shape == (1, 2, 64, 48)
    _roundtrip(net, x, tmp_path)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.rand(1, 3, 40, 40))
    assert round(count_parameters(EffFormerISCF()) / 1e6, 1) == 15.8


def test_default_architecture_unchanged():
    # counted on the HEAD version before `skip` / `fused_scales` existed
    assert _params(EffFormerISCF()) == DEFAULT_PARAMS
    assert _params(EffFormerISCF(skip="iscf", fused_scales=3)) == DEFAULT_PARAMS
    assert _params(EffFormerISCF(**SMALL)) == SMALL_PARAMS
    net = EffFormerISCF(**SMALL)
    assert net.skip == "iscf" and net.fused_scales == 3
    assert len(net.decoder.iscf.maps) == 3


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_shapes_and_script(variant, tmp_path):
    torch.manual_seed(0)
    net = EffFormerISCF(in_channels=3, out_channels=2, **SMALL, **variant)
    x = torch.rand(2, 3, 64, 64)
    assert net(x).shape == (2, 2, 64, 64)
    _roundtrip(net, x, tmp_path)


@pytest.mark.parametrize("size", [224, 384])
@pytest.mark.parametrize("variant", [{"skip": "concat"}, {"fused_scales": 1}, {"fused_scales": 3}])
def test_paper_input_sizes(size, variant):
    net = EffFormerISCF(in_channels=3, out_channels=1, **SMALL, **variant).eval()
    with torch.no_grad():
        feats = net.encoder(torch.rand(1, 3, size, size))
        assert [f.shape[-1] for f in feats] == [size // 4, size // 8, size // 16]
        assert net.head(net.decoder(feats)).shape == (1, 1, size, size)


def test_parameter_counts_ordered():
    counts = [_params(EffFormerISCF(**SMALL, **v)) for v in VARIANTS]
    assert counts == sorted(set(counts)), counts  # concat < 1 < 2 < 3 fused scales, strictly
    assert counts[-1] == SMALL_PARAMS
    assert EffFormerISCF(**SMALL, skip="concat").decoder.iscf is None
    assert not any("iscf" in name for name, _ in EffFormerISCF(**SMALL, skip="concat").named_parameters())
    # the fused context is as wide as the widest fused stage
    assert [len(EffFormerISCF(**SMALL, fused_scales=k).decoder.iscf.maps) for k in (1, 2, 3)] == [1, 2, 3]
    assert EffFormerISCF(**SMALL, fused_scales=2).decoder.iscf.maps[0].out_channels == 32


def _decoder_skips(net, x):
    """The encoder features and the skip / bottleneck maps the decoder actually joins, shallow to deep."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [net.decoder.ups[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("bottom", a[0]))]
    n = len(net.decoder.fuse)
    for j, fuse in enumerate(net.decoder.fuse):
        level = n - 1 - j  # fuse[0] joins the skip of the level just above the bottleneck
        width = net.encoder.out_channels[level]
        hooks.append(fuse.register_forward_pre_hook(lambda m, a, lv=level, w=width: seen.__setitem__(lv, a[0][:, w:])))
    with torch.no_grad():
        feats = net.encoder(x)
        net.head(net.decoder(feats))
    for h in hooks:
        h.remove()
    joined = [seen[i] for i in range(n)] + [seen["bottom"]]
    return feats, joined


@pytest.mark.parametrize("variant", VARIANTS)
def test_passed_through_stages_are_untouched(variant):
    torch.manual_seed(0)
    net = EffFormerISCF(**SMALL, **variant).eval()
    feats, joined = _decoder_skips(net, torch.rand(1, 3, 64, 64))
    fused = 0 if variant.get("skip") == "concat" else variant["fused_scales"]
    for i, (f, j) in enumerate(zip(feats, joined, strict=True)):
        if i < fused:  # refined by ISCF: shallowest stages first
            assert not torch.allclose(f, j), f"stage {i} should be refined by ISCF"
        else:
            assert torch.equal(f, j), f"stage {i} should pass through unchanged"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"skip": "add"}, "skip must be"),
        ({"skip": "ISCF"}, "skip must be"),
        ({"fused_scales": 0}, "fused_scales"),
        ({"fused_scales": 4}, "fused_scales"),
        ({"fused_scales": -1}, "fused_scales"),
        ({"fused_scales": 2.0}, "fused_scales"),
        ({"fused_scales": True}, "fused_scales"),
        ({"skip": "concat", "fused_scales": 4}, "fused_scales"),
        ({"dims": (16, 32), "depths": (1, 1), "fused_scales": 3}, r"\[1, 2\]"),
    ],
)
def test_bad_switches(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EffFormerISCF(**{**SMALL, **kwargs})


def test_iscf_costs_its_parameters_over_concatenation():
    """What ISCF adds to plain skip concatenation in the default network (the bundle README's lineage table): the
    authors' context bridge has parameters, whatever a loose summary says; pinned per part."""
    iscf, concat = EffFormerISCF(), EffFormerISCF(skip="concat")
    assert _params(iscf) - _params(concat) == 3_349_468 == _params(iscf.decoder.iscf)
    parts = {name: _params(module) for name, module in iscf.decoder.iscf.named_children()}
    assert parts == {"maps": 493_056, "attns": 2_363_904, "back": 492_480, "excite": 24, "merge": 4}
