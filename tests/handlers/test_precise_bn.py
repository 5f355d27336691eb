import pytest
import torch
from ignite.engine import Engine
from torch import nn

from monai_skinattr.handlers import PreciseBN
from monai_skinattr.networks import EffLinkNet, freeze_encoder


def test_running_statistics_become_exact_batch_averages():
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2))
    nn.init.ones_(net[0].weight)
    batches = [torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), 3.0)]
    engine = Engine(lambda e, b: None)
    engine.network = net
    PreciseBN(batches, num_batches=2).attach(engine)
    engine.run([0], max_epochs=1)
    torch.testing.assert_close(net[1].running_mean, torch.full((2,), 2.0))  # mean of the two batch means
    torch.testing.assert_close(net[1].running_var, torch.zeros(2))  # each batch is constant
    assert net[1].momentum == 0.1 and net.training


def test_frozen_encoder_statistics_untouched():
    net = freeze_encoder(EffLinkNet())
    before = net.encoder.stem.bn.running_mean.clone()
    decoder_before = net.decoder.blocks[0].reduce.adn.N.running_mean.clone()
    PreciseBN([torch.rand(2, 3, 64, 64)], network=net)(Engine(lambda e, b: None))
    assert torch.equal(net.encoder.stem.bn.running_mean, before)
    assert not torch.equal(net.decoder.blocks[0].reduce.adn.N.running_mean, decoder_before)
    with pytest.raises(ValueError):
        PreciseBN([], num_batches=0)
