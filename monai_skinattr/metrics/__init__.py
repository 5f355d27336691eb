"""Metrics: ISIC challenge scoring, encoder robustness (transferability) and loss curvature."""

from .isic import ISICTask1Metric, ISICTask2Metric, binarize, confusion, isic_task1_score, isic_task2_score
from .stability import hessian_spectral_norm
from .transferability import default_views, robustness_score, select_offline, select_online

__all__ = [
    "ISICTask1Metric",
    "ISICTask2Metric",
    "binarize",
    "confusion",
    "default_views",
    "hessian_spectral_norm",
    "isic_task1_score",
    "isic_task2_score",
    "robustness_score",
    "select_offline",
    "select_online",
]
