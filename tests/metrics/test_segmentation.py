"""PooledDiceMetric (Dice pooled over a split) and HD95Metric (NaN when there is nothing to measure)."""

import math

import pytest
import torch

from monai_skinattr.metrics import HD95Metric, PooledDiceMetric


def onehot(v: torch.Tensor) -> torch.Tensor:
    """``(B, W)`` class indices as ``(B, 4, W, 1)`` one-hot maps."""
    return torch.nn.functional.one_hot(v, 4).permute(0, 2, 1)[..., None].float()


def test_pooled_dice_is_the_thesis_dice():
    # image 1: 1 TP, 1 FP; image 2: 1 FN. Pooled: 2*1 / (2*1 + 1 + 1) = 0.5; per image (2/3 + 0) / 2 = 1/3
    pred = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).reshape(2, 1, 2, 1)
    truth = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 1, 2, 1)
    metric = PooledDiceMetric()
    metric(torch.cat([1 - pred, pred], 1), torch.cat([1 - truth, truth], 1))
    assert float(metric.aggregate()) == pytest.approx(0.5)
    # three classes over two 1x4 images; class 3 absent from both everywhere: skipped
    y = torch.tensor([[0, 1, 1, 2], [0, 0, 2, 2]])
    p = torch.tensor([[0, 1, 2, 2], [0, 0, 2, 1]])
    metric = PooledDiceMetric()
    metric(onehot(p), onehot(y))
    dice_1 = 2 * 1 / (2 * 1 + 1 + 1)  # class 1: TP 1, FP 1, FN 1
    dice_2 = 2 * 2 / (2 * 2 + 1 + 1)  # class 2: TP 2, FP 1, FN 1
    assert float(metric.aggregate()) == pytest.approx((dice_1 + dice_2) / 2)
    empty = PooledDiceMetric()
    background = torch.zeros(1, 2, 4, 4).index_fill_(1, torch.tensor([0]), 1)
    empty(background, background)
    assert float(empty.aggregate()) == 1.0  # nothing to find, nothing found


def test_hd95_is_undefined_without_masks_and_monai_otherwise():
    hd = HD95Metric()
    hd(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
    assert math.isnan(float(hd.aggregate()))  # undefined, not a perfect 0
    pred, truth = torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)
    pred[0, 1, 2:4, 2:4], truth[0, 1, 2:4, 4:6] = 1, 1
    hd = HD95Metric()
    hd(pred, truth)
    assert float(hd.aggregate()) == pytest.approx(2.0)  # the squares are 2 pixels apart
