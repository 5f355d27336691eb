"""Size, compute and speed of a network at one input size (what the papers' efficiency tables report)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .base import count_parameters

__all__ = ["profile_network"]


def profile_network(
    net: nn.Module, size: Sequence[int], repeats: int = 5, in_channels: int = 3, device: str | torch.device = "cpu"
) -> tuple[int, float, float]:
    """
    ``(parameters counting BatchNorm statistics, GFLOPs, median latency in ms)`` of ``net`` at batch 1 on a
    ``(1, in_channels, *size)`` input. FLOPs count a multiply-add as two operations (``torch.utils.flop_counter``).

    .. code-block:: python

        params, gflops, ms = profile_network(EffFormerISCF(), (224, 224))
    """
    net = net.eval().to(device)
    x = torch.rand(1, in_channels, *size, device=device)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            net(x)
        net(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000)
    return count_parameters(net), counter.get_total_flops() / 1e9, statistics.median(times)
