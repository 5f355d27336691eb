import pytest
import torch

from monai_skinattr.networks import ChannelNormalization, EffUNet, input_normalization

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def test_imagenet_is_exact():
    x = torch.rand(2, 3, 5, 7)
    assert torch.equal(ChannelNormalization("imagenet")(x), (x - MEAN) / STD)
    with pytest.raises(ValueError, match="3"):
        ChannelNormalization()(torch.rand(1, 1, 4, 4))


def test_inception_maps_0_1_to_minus_1_1_and_is_chosen_for_inception_resnet_v2():
    x = torch.rand(2, 3, 5, 7)
    assert torch.equal(ChannelNormalization("inception")(x), (x - 0.5) / 0.5)
    with pytest.raises(ValueError, match="inception normalisation needs"):
        ChannelNormalization("inception")(torch.rand(1, 1, 4, 4))
    assert input_normalization("inceptionresnetv2") == "inception"  # timm's IMAGENET_INCEPTION_MEAN/STD
    assert {input_normalization(e) for e in ("vgg16", "resnet152", "densenet169", "efficientnet-b0")} == {"imagenet"}


def test_instance_standardises_each_image_and_channel():
    x = torch.rand(3, 4, 16, 12) * torch.arange(1, 5).view(1, 4, 1, 1) * 50 + 7
    y = ChannelNormalization("instance")(x)
    torch.testing.assert_close(y.mean(dim=(2, 3)), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), torch.ones(3, 4), atol=1e-4, rtol=0)
    assert torch.equal(ChannelNormalization("instance")(torch.full((1, 2, 4, 4), 3.0)), torch.zeros(1, 2, 4, 4))


def test_none_and_bad_mode():
    x = torch.rand(1, 2, 3, 3)
    assert torch.equal(ChannelNormalization("none")(x), x)
    with pytest.raises(ValueError, match="imagenet, inception, instance, none"):
        ChannelNormalization("zscore")


@pytest.mark.parametrize("mode", ["imagenet", "inception", "instance", "none"])
def test_scriptable_and_stateless(mode, tmp_path):
    norm = ChannelNormalization(mode)
    assert norm.state_dict() == {}
    x = torch.rand(2, 3, 8, 8)
    torch.jit.save(torch.jit.script(norm), str(tmp_path / "norm.ts"))
    assert torch.equal(torch.jit.load(str(tmp_path / "norm.ts"))(x), norm(x))


def test_in_front_of_a_network_leaves_its_state_dict_unchanged():
    net = EffUNet()
    wrapped = torch.nn.Sequential(ChannelNormalization("imagenet"), net)
    assert [k.removeprefix("1.") for k in wrapped.state_dict()] == list(net.state_dict())
