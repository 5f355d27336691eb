import pytest
import torch
from monai.networks.blocks.activation import Swish
from torch import nn

from monai_skinattr.networks import EffUNet, fold_batch_norms, optimize_for_inference, swish_to_silu


def _with_statistics(net: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so folding them is not an identity."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("optimize, channels_last", [(fold_batch_norms, False), (optimize_for_inference, True)])
def test_folds_every_batch_norm_of_an_effunet_and_keeps_its_output(optimize, channels_last):
    net = _with_statistics(EffUNet())
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = net(x)
        fast = optimize(net)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in fast.modules()) == 0
        assert fast.head.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert torch.allclose(fast(x), expected, atol=1e-4)


def test_leaves_a_convolution_whose_output_is_also_used_elsewhere():
    class Branch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.bn(y) + y + self.bn2(self.conv2(y))

    net = _with_statistics(Branch())
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
        fold_batch_norms(net)
        assert isinstance(net.bn, nn.BatchNorm2d) and isinstance(net.bn2, nn.Identity)
        assert torch.allclose(net(x), expected, atol=1e-5)


def test_swish_to_silu_replaces_every_swish_and_keeps_the_output():
    net = EffUNet().eval()
    swishes = sum(isinstance(m, Swish) for m in net.modules(remove_duplicate=False))
    kept = nn.Sequential(Swish(alpha=2.0))  # another function: left alone
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = net(x)
        swish_to_silu(net)
        swish_to_silu(kept)
        assert swishes > 0 and sum(isinstance(m, Swish) for m in net.modules(remove_duplicate=False)) == 0
        assert sum(isinstance(m, nn.SiLU) for m in net.modules(remove_duplicate=False)) == swishes
        assert isinstance(kept[0], Swish)
        assert torch.allclose(net(x), expected, atol=1e-5)


def test_refuses_a_network_in_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(EffUNet())
