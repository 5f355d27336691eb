"""Recompute BatchNorm running statistics before validation (PreciseBN, as in detectron2)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import torch
from ignite.engine import Engine, Events
from torch import nn

from .prepare_batch import plain_tensors

__all__ = ["PreciseBN"]


class PreciseBN:
    """
    Re-estimate the running mean/variance of every BatchNorm layer that is training, as the plain average over
    ``num_batches`` batches of ``loader`` with the current weights, at the end of each epoch. Attach it before the
    ``ValidationHandler`` so validation sees statistics of the final weights instead of an exponential average
    that lags behind them — which matters for short runs and for EfficientNet's slow BatchNorm momentum. Layers in
    eval mode (a frozen encoder) are left alone.

    .. code-block:: python

        handlers = [PreciseBN(train_loader, num_batches=200), ValidationHandler(validator=evaluator, interval=1)]

    Args:
        loader: training batches (dicts holding ``image_key`` or tensors).
        num_batches: batches to average over (detectron2 uses 200).
        image_key: key of the network input in dict batches.
        network: the network; default the attached engine's ``network``.
    """

    def __init__(
        self, loader: Iterable, num_batches: int = 200, image_key: str = "image", network: nn.Module | None = None
    ) -> None:
        if num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}.")
        self.loader = loader
        self.num_batches = num_batches
        self.image_key = image_key
        self.network = network

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        net = self.network if self.network is not None else engine.network
        was_training = net.training
        net.train()
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
        if not norms:
            net.train(was_training)
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        device = next(net.parameters()).device
        with torch.no_grad():
            for batch in islice(self.loader, self.num_batches):
                x = batch[self.image_key] if isinstance(batch, dict) else batch
                net(plain_tensors(torch.as_tensor(x)).to(device))  # MetaTensor bookkeeping only slows it down
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.train(was_training)
