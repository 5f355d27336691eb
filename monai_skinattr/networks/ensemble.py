"""Averaging the probabilities of several networks (TATL averages its U-shape and Link-shape segmenters)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ProbabilityEnsemble"]


class ProbabilityEnsemble(nn.Module):
    """
    Mean of the members' probabilities: sigmoid (binary / multi-label) or softmax over channels (multi-class) of
    each member's logits, averaged. The output is a probability map, not logits: threshold it directly
    (``AsDiscrete(threshold=0.5)``) instead of applying another sigmoid.

    .. code-block:: python

        from monai_skinattr.networks import EffLinkNet, EffUNet, ProbabilityEnsemble

        net = ProbabilityEnsemble([EffUNet(), EffLinkNet()])

    Args:
        nets: member networks with the same output shape.
        activation: ``"sigmoid"`` or ``"softmax"``.
    """

    def __init__(self, nets: Sequence[nn.Module], activation: str = "sigmoid") -> None:
        super().__init__()
        if len(nets) == 0:
            raise ValueError("ProbabilityEnsemble needs at least one network.")
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(f"activation must be 'sigmoid' or 'softmax', got '{activation}'.")
        self.nets = nn.ModuleList(nets)
        self.softmax = activation == "softmax"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(0)
        for i, net in enumerate(self.nets):
            logits = net(x)
            prob = torch.softmax(logits, dim=1) if self.softmax else torch.sigmoid(logits)
            total = prob if i == 0 else total + prob
        return total / len(self.nets)
