"""Segmentation scores MONAI lacks in the form some papers report them: Dice pooled over a whole split, HD95 that is
undefined (not perfect) when there is nothing to measure."""

from __future__ import annotations

import torch
from monai.metrics import ConfusionMatrixMetric, HausdorffDistanceMetric

__all__ = ["HD95Metric", "PooledDiceMetric"]


class PooledDiceMetric(ConfusionMatrixMetric):
    """
    Dice pooled over a split (MONAI's ``ConfusionMatrixMetric`` F1 with ``reduction="sum_batch"``): true/false
    positives and false negatives summed over every pixel of every image, ``2 TP / (2 TP + FP + FN)`` per class,
    then averaged over the classes (the background excluded unless ``include_background``; a class absent from both
    prediction and ground truth is skipped, 1.0 if all are). Inputs are one-hot ``(B, C, ...)`` maps. MONAI's
    ``DiceMetric`` averages per-image Dice instead, which weights a small structure in one image like a large one in
    another.

    .. code-block:: python

        import torch
        from monai_skinattr.metrics import PooledDiceMetric

        metric = PooledDiceMetric()
        pred = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).reshape(2, 1, 2, 1)
        truth = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 1, 2, 1)
        metric(torch.cat([1 - pred, pred], 1), torch.cat([1 - truth, truth], 1))
        print(metric.aggregate())  # tensor(0.5000): 2·1 / (2·1 + 1 + 1); per image: (2/3 + 0) / 2

    Args:
        include_background: whether channel 0 is scored too.
    """

    def __init__(self, include_background: bool = False) -> None:
        super().__init__(
            include_background=include_background, metric_name="f1 score", compute_sample=False, reduction="sum_batch"
        )

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        per_class = super().aggregate()[0]
        present = per_class[~torch.isnan(per_class)]
        return present.mean() if present.numel() else torch.ones((), device=per_class.device)


class HD95Metric(HausdorffDistanceMetric):
    """
    MONAI's ``HausdorffDistanceMetric(percentile=95)``, averaged over the (image, class) pairs where both masks are
    non-empty, and NaN (where MONAI's mean gives 0, a perfect score) when there is no such pair.

    .. code-block:: python

        import torch
        from monai_skinattr.metrics import HD95Metric

        metric = HD95Metric()
        metric(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
        print(metric.aggregate())  # tensor([nan]): nothing to measure

    Args:
        include_background: whether channel 0 is scored too.
    """

    def __init__(self, include_background: bool = False) -> None:
        super().__init__(include_background=include_background, percentile=95, get_not_nans=True)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        value, not_nans = super().aggregate()
        return torch.where(not_nans > 0, value, torch.full_like(value, float("nan")))
