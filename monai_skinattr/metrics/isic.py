"""ISIC challenge segmentation scores, exactly as the official ``isic-challenge-scoring`` package defines them.

Task 1 (lesion): a confusion matrix per image; each metric per image, then the mean over images. The challenge
ranks by the thresholded Jaccard (an image's Jaccard, or 0 when it is below 0.65).

Task 2 (attributes): a confusion matrix per image and attribute, normalised by the image's pixel count (so images
of any size weigh the same), summed over the images of an attribute; Jaccard and Dice of the sums. The overall
(micro) score pools every attribute's normalised matrices; the macro score is the mean over attributes.

Masks are binarised at ``> 128`` when they are uint8 (0/255 PNGs), at ``>= 0.5`` when they are floating point
(probabilities), and taken as they are when boolean. Empty truth with an empty prediction scores 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric

__all__ = [
    "binarize",
    "confusion",
    "isic_task1_score",
    "isic_task2_score",
    "ISICTask1Metric",
    "ISICTask2Metric",
]

_TASK1_METRICS = ("threshold_jaccard", "jaccard", "dice", "sensitivity", "specificity", "accuracy")


def binarize(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """Boolean mask: uint8 ``> 128``, floating point ``>= 0.5``, bool as is; other integers ``> 0``."""
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if arr.dtype == np.uint8:
        return arr > 128
    if np.issubdtype(arr.dtype, np.floating):
        return arr >= 0.5
    return arr > 0


def confusion(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """``[TP, TN, FP, FN]`` pixel counts of two masks of the same shape (binarised with :func:`binarize`)."""
    t, p = binarize(truth), binarize(prediction)
    if t.shape != p.shape:
        raise ValueError(f"prediction shape {p.shape} differs from truth shape {t.shape}.")
    tp = np.count_nonzero(t & p)
    fp = np.count_nonzero(~t & p)
    fn = np.count_nonzero(t & ~p)
    return np.array([tp, t.size - tp - fp - fn, fp, fn], dtype=np.float64)


def _jaccard(cm: np.ndarray) -> float:
    tp, _, fp, fn = cm
    return 1.0 if tp + fp + fn == 0 else float(tp / (tp + fp + fn))


def _dice(cm: np.ndarray) -> float:
    tp, _, fp, fn = cm
    return 1.0 if tp + fp + fn == 0 else float(2 * tp / (2 * tp + fp + fn))


def _task1_image(cm: np.ndarray, threshold: float) -> dict[str, float]:
    tp, tn, fp, fn = cm
    jaccard = _jaccard(cm)
    return {
        "threshold_jaccard": jaccard if jaccard >= threshold else 0.0,
        "jaccard": jaccard,
        "dice": _dice(cm),
        "sensitivity": 1.0 if tp + fn == 0 else float(tp / (tp + fn)),
        "specificity": 1.0 if tn + fp == 0 else float(tn / (tn + fp)),
        "accuracy": float((tp + tn) / cm.sum()),
    }


def isic_task1_score(
    truths: Sequence[np.ndarray | torch.Tensor],
    predictions: Sequence[np.ndarray | torch.Tensor],
    threshold: float = 0.65,
) -> dict[str, float]:
    """
    ISIC Task 1 (lesion segmentation) score of paired masks (any sizes, each pair the same size).

    .. code-block:: python

        import numpy as np
        from monai_skinattr.metrics import isic_task1_score

        truth = np.zeros((4, 4), np.uint8); truth[:2] = 255
        print(isic_task1_score([truth], [truth])["threshold_jaccard"])  # 1.0

    Returns:
        the macro (per-image mean) ``threshold_jaccard`` (the challenge's ranking score), ``jaccard``, ``dice``,
        ``sensitivity``, ``specificity`` and ``accuracy``.
    """
    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} truth masks but {len(predictions)} predictions.")
    if not truths:
        raise ValueError("no masks to score.")
    per_image = [_task1_image(confusion(t, p), threshold) for t, p in zip(truths, predictions, strict=True)]
    return {m: float(np.mean([s[m] for s in per_image])) for m in _TASK1_METRICS}


def _task2_from_pooled(pooled: Mapping[str, np.ndarray]) -> dict:
    scores: dict = {a: {"jaccard": _jaccard(cm), "dice": _dice(cm)} for a, cm in sorted(pooled.items())}
    total = np.sum(list(pooled.values()), axis=0)
    attrs = sorted(pooled)
    scores["macro_average"] = {m: float(np.mean([scores[a][m] for a in attrs])) for m in ("jaccard", "dice")}
    scores["micro_average"] = {"jaccard": _jaccard(total), "dice": _dice(total)}
    scores["overall"] = scores["micro_average"]["jaccard"]
    return scores


def isic_task2_score(
    truths: Mapping[str, Sequence[np.ndarray | torch.Tensor]],
    predictions: Mapping[str, Sequence[np.ndarray | torch.Tensor]],
) -> dict:
    """
    ISIC Task 2 (attribute detection) score: per attribute, the Jaccard and Dice of the pooled, pixel-count
    normalised confusion matrices of its images.

    .. code-block:: python

        scores = isic_task2_score({"streaks": [truth]}, {"streaks": [prediction]})
        print(scores["streaks"]["jaccard"], scores["macro_average"]["jaccard"], scores["overall"])

    Args:
        truths: attribute name -> list of truth masks.
        predictions: attribute name -> list of predicted masks, paired with ``truths``.

    Returns:
        ``{attribute: {"jaccard", "dice"}, "macro_average": {...}, "micro_average": {...}, "overall": micro Jaccard}``.
    """
    if set(truths) != set(predictions):
        raise ValueError(f"attributes differ: truth {sorted(truths)}, prediction {sorted(predictions)}.")
    if not truths:
        raise ValueError("no attributes to score.")
    pooled = {}
    for attr in truths:
        if len(truths[attr]) != len(predictions[attr]):
            raise ValueError(f"'{attr}': {len(truths[attr])} truth masks but {len(predictions[attr])} predictions.")
        if not truths[attr]:
            raise ValueError(f"'{attr}': no masks to score.")
        cms = [confusion(t, p) for t, p in zip(truths[attr], predictions[attr], strict=True)]
        pooled[attr] = np.sum([cm / cm.sum() for cm in cms], axis=0)
    return _task2_from_pooled(pooled)


class ISICTask2Metric(CumulativeIterationMetric):
    """
    The ISIC Task 2 score accumulated over an evaluation, for MONAI / Ignite evaluators: each call takes a batch of
    predictions and truths ``(B, C, H, W)`` (channel ``c`` is attribute ``attributes[c]``) and buffers each image's
    normalised confusion matrix per channel; :meth:`aggregate` returns :func:`isic_task2_score`'s dict. Wrap it with
    ``monai.handlers.IgniteMetricHandler`` to use it as a validation metric.

    .. code-block:: python

        from monai.handlers import IgniteMetricHandler
        from monai_skinattr.metrics import ISICTask2Metric

        metric = ISICTask2Metric(attributes=("streaks",), reduction="overall")
        handler = IgniteMetricHandler(metric_fn=metric, output_transform=from_engine(["pred", "label"]))

    Args:
        attributes: attribute name of each channel.
        reduction: what :meth:`aggregate` returns: ``"all"`` (the full dict), ``"overall"`` (micro Jaccard),
            ``"macro"`` (macro Jaccard), or an attribute name (its Jaccard).
    """

    def __init__(self, attributes: Sequence[str], reduction: str = "all") -> None:
        super().__init__()
        if reduction not in ("all", "overall", "macro", *attributes):
            raise ValueError(f"reduction must be 'all', 'overall', 'macro' or an attribute, got '{reduction}'.")
        self.attributes = tuple(attributes)
        self.reduction = reduction

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if y_pred.shape != y.shape or y.ndim < 3 or y.shape[1] != len(self.attributes):
            raise ValueError(
                f"expected prediction and truth of shape (B, {len(self.attributes)}, ...), got {tuple(y_pred.shape)} "
                f"and {tuple(y.shape)}."
            )
        out = torch.empty(y.shape[0], y.shape[1], 4, dtype=torch.float64)
        for b in range(y.shape[0]):
            for c in range(y.shape[1]):
                cm = confusion(y[b, c], y_pred[b, c])
                out[b, c] = torch.from_numpy(cm / cm.sum())
        return out

    def aggregate(self):  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            raise ValueError("ISICTask2Metric has no accumulated images to aggregate.")
        pooled = {a: data[:, c].sum(0).numpy() for c, a in enumerate(self.attributes)}
        scores = _task2_from_pooled(pooled)
        if self.reduction == "all":
            return scores
        if self.reduction == "overall":
            return scores["overall"]
        if self.reduction == "macro":
            return scores["macro_average"]["jaccard"]
        return scores[self.reduction]["jaccard"]


class ISICTask1Metric(CumulativeIterationMetric):
    """
    The ISIC Task 1 score accumulated over an evaluation: each call takes predictions and truths ``(B, 1, H, W)``
    and buffers each image's metrics; :meth:`aggregate` returns their means (:func:`isic_task1_score`'s dict) or,
    with ``reduction`` set to a metric name, that one number (e.g. ``"threshold_jaccard"`` for a key metric).
    Wrap it with ``monai.handlers.IgniteMetricHandler`` inside an evaluator.

    Args:
        reduction: ``"all"`` or one of ``threshold_jaccard``, ``jaccard``, ``dice``, ``sensitivity``,
            ``specificity``, ``accuracy``.
        threshold: Jaccard threshold of the challenge score.
    """

    def __init__(self, reduction: str = "all", threshold: float = 0.65) -> None:
        super().__init__()
        if reduction not in ("all", *_TASK1_METRICS):
            raise ValueError(f"reduction must be 'all' or one of {_TASK1_METRICS}, got '{reduction}'.")
        self.reduction = reduction
        self.threshold = threshold

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if y_pred.shape != y.shape or y.ndim < 3 or y.shape[1] != 1:
            raise ValueError(
                f"expected prediction and truth of shape (B, 1, ...), got {tuple(y_pred.shape)} and {tuple(y.shape)}."
            )
        rows = [_task1_image(confusion(y[b, 0], y_pred[b, 0]), self.threshold) for b in range(y.shape[0])]
        return torch.tensor([[r[m] for m in _TASK1_METRICS] for r in rows], dtype=torch.float64)

    def aggregate(self):  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            raise ValueError("ISICTask1Metric has no accumulated images to aggregate.")
        means = {m: float(v) for m, v in zip(_TASK1_METRICS, data.mean(0), strict=True)}
        return means if self.reduction == "all" else means[self.reduction]
