"""TATL's training loss: a weighted sum of the Tversky and soft Jaccard losses (TATL Eq. 1-3)."""

from __future__ import annotations

import torch
from monai.losses import TverskyLoss
from torch import nn

__all__ = ["TverskyJaccardLoss"]


class TverskyJaccardLoss(nn.Module):
    """
    ``lambda_tversky * (1 - T) + lambda_jaccard * (1 - J)`` with, for probabilities ``p`` and target ``y``,

    - ``T = (<y, p> + s) / (<y, p> + beta <y, 1 - p> + (1 - beta) <1 - y, p> + s)`` — beta weights false negatives;
    - ``J = (<y, p> + s) / (|y|_1 + |p|_1 - <y, p> + s)``.

    Both are MONAI ``TverskyLoss`` instances (the Jaccard one with both weights 1). Inputs are logits, turned
    into probabilities by a sigmoid (or softmax with ``softmax=True``).

    .. code-block:: python

        import torch
        from monai_skinattr.losses import TverskyJaccardLoss

        loss = TverskyJaccardLoss()  # TATL: 0.5 / 0.5, smoothing 1, beta 0.6
        print(loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))  # tensor(0.3429)

    Args:
        lambda_tversky: weight of the Tversky term.
        lambda_jaccard: weight of the Jaccard term.
        smooth: added to numerators and denominators.
        beta: Tversky weight of false negatives (false positives get ``1 - beta``).
        softmax: softmax over channels instead of a sigmoid per channel.
        batch: pool the sums over the batch before the ratio (otherwise one ratio per image, then the mean).
    """

    def __init__(
        self,
        lambda_tversky: float = 0.5,
        lambda_jaccard: float = 0.5,
        smooth: float = 1.0,
        beta: float = 0.6,
        softmax: bool = False,
        batch: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}.")
        common = {"sigmoid": not softmax, "softmax": softmax, "smooth_nr": smooth, "smooth_dr": smooth, "batch": batch}
        self.tversky = TverskyLoss(alpha=1.0 - beta, beta=beta, **common)
        self.jaccard = TverskyLoss(alpha=1.0, beta=1.0, **common)
        self.lambda_tversky = lambda_tversky
        self.lambda_jaccard = lambda_jaccard

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.lambda_tversky * self.tversky(input, target) + self.lambda_jaccard * self.jaccard(input, target)
