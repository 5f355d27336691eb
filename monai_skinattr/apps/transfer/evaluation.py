"""Scoring a downstream network as the thesis reports it: the pooled Dice, Jaccard and HD95 handlers, overall and per
class.

.. code-block:: python

    from monai_skinattr.apps.transfer import metric_handlers

    handlers = metric_handlers("test", ("background", "RV", "MYO", "LV"), ["dice", "hd95"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.handlers import IgniteMetricHandler, from_engine
from monai.metrics import MeanIoU

from ...metrics import HD95Metric, PooledDiceMetric

__all__ = ["ClassChannel", "metric_handlers"]


class ClassChannel:
    """
    ``output_transform`` of an ``IgniteMetricHandler`` that scores one class: channel ``index`` of the one-hot
    ``pred`` and ``label`` of every item (for per-class ACDC metrics).

    .. code-block:: python

        IgniteMetricHandler(PooledDiceMetric(include_background=True), output_transform=ClassChannel(1))  # RV
    """

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, output: Sequence[Mapping]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        preds, labels = from_engine(["pred", "label"])(output)
        i = self.index
        return [p[i : i + 1] for p in preds], [y[i : i + 1] for y in labels]


def _metric(name: str, include_background: bool) -> object:
    if name == "dice":
        return PooledDiceMetric(include_background)
    if name == "jaccard":
        return MeanIoU(include_background=include_background, ignore_empty=False)
    if name == "hd95":
        return HD95Metric(include_background=include_background)
    raise ValueError(f"metric must be 'dice', 'jaccard' or 'hd95', got '{name}'.")


def metric_handlers(
    prefix: str,
    class_names: Sequence[str],
    names: Sequence[str] = ("dice",),
    per_class: bool = True,
    exclude: Sequence[str] = (),
) -> dict[str, IgniteMetricHandler]:
    """
    ``{"<prefix>_<name>": handler}`` averaged over the foreground classes, and with ``per_class`` and several
    foreground classes (ACDC) ``"<prefix>_<name>_<class>"`` for each. ``names``: ``"dice"`` (:class:`PooledDiceMetric`,
    the thesis' Dice), ``"jaccard"`` (MONAI's ``MeanIoU`` per image, every image counted: an empty ground truth
    predicted empty scores 1), ``"hd95"`` (:class:`HD95Metric`, in pixels, over the images where both masks are
    non-empty). Handlers named in ``exclude`` are left out (the evaluator's key metric, listed on its own).

    .. code-block:: python

        handlers = metric_handlers("test", ("background", "RV", "MYO", "LV"), ["dice", "hd95"])
        print(list(handlers))  # ['test_dice', 'test_dice_RV', ..., 'test_hd95', 'test_hd95_RV', ...]
    """
    out: dict[str, IgniteMetricHandler] = {}
    for name in names:
        out[f"{prefix}_{name}"] = IgniteMetricHandler(
            _metric(name, False), output_transform=from_engine(["pred", "label"]), save_details=False
        )
        if per_class and len(class_names) > 2:
            for i, cls in enumerate(class_names[1:], start=1):
                out[f"{prefix}_{name}_{cls}"] = IgniteMetricHandler(
                    _metric(name, True), output_transform=ClassChannel(i), save_details=False
                )
    return {k: v for k, v in out.items() if k not in exclude}
