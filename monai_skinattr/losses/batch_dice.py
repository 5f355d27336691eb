"""The pretraining-length thesis' downstream loss (its Eq. 2.10): batch Dice with squared denominators, every class
including the background, binary tasks as two classes."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch import nn

__all__ = ["BatchDiceLoss"]


class BatchDiceLoss(nn.Module):
    """
    ``mean_c [1 - (2 Σ y_c ŷ_c + ε) / (Σ y_c² + Σ ŷ_c² + ε)]`` over every class ``c`` including the background,
    each sum running over the whole batch and all pixels (thesis Eq. 2.10 with the binary Dice loss of its
    Eq. 1.10). Several logit channels are turned into ``ŷ`` by a softmax; one logit channel (a binary task) gives
    ``ŷ = [1 - p, p]`` with ``p = sigmoid(logit)``, so the background counts as a class, as in the thesis. The
    target holds class indices, one channel. This is MONAI's ``DiceLoss(include_background=True, to_onehot_y=True,
    squared_pred=True, batch=True)`` applied to ``ŷ``; MONAI's loss on one sigmoid channel would score the
    foreground only.

    .. code-block:: python

        import torch
        from monai_skinattr.losses import BatchDiceLoss

        logits = torch.log(torch.tensor([3.0, 1.0, 1 / 3, 1 / 3])).reshape(1, 1, 2, 2)  # p = .75, .5, .25, .25
        target = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
        print(BatchDiceLoss()(logits, target))  # tensor(0.1622): (7/31 + 7/71) / 2; the foreground alone is 7/31

    Args:
        smooth: the ε added to numerator and denominator (the thesis leaves it unstated; 1e-5 is the authors'
            configuration and MONAI's default).
    """

    def __init__(self, smooth: float = 1e-5) -> None:
        super().__init__()
        self.dice = DiceLoss(
            include_background=True, to_onehot_y=True, squared_pred=True, batch=True, smooth_nr=smooth, smooth_dr=smooth
        )

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H[, W, D])``; ``C == 1`` for a binary task.
            target: class indices ``(B, 1, H[, W, D])`` (0/1 for a binary task).
        """
        if input.shape[1] == 1:
            p = torch.sigmoid(input)
            probabilities = torch.cat([1 - p, p], dim=1)
        else:
            probabilities = torch.softmax(input, dim=1)
        return self.dice(probabilities, target)
