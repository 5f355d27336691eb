"""Metrics: ISIC challenge scoring, pooled Dice and HD95, encoder robustness and the transferability indicator score,
loss curvature."""

from .isic import ISICTask1Metric, ISICTask2Metric, binarize, confusion, isic_task1_score, isic_task2_score
from .segmentation import HD95Metric, PooledDiceMetric
from .stability import hessian_spectral_norm, per_sample_hessian_norms, stability_bound, stability_bound_terms
from .transferability import (
    default_views,
    robustness_score,
    select_offline,
    select_online,
    transferability_indicator_score,
)

__all__ = [
    "HD95Metric",
    "ISICTask1Metric",
    "ISICTask2Metric",
    "PooledDiceMetric",
    "binarize",
    "confusion",
    "default_views",
    "hessian_spectral_norm",
    "isic_task1_score",
    "isic_task2_score",
    "per_sample_hessian_norms",
    "robustness_score",
    "select_offline",
    "select_online",
    "stability_bound",
    "stability_bound_terms",
    "transferability_indicator_score",
]
