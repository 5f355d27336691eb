"""Metrics: ISIC challenge scoring (and, to come, transferability and stability)."""

from .isic import ISICTask2Metric, binarize, confusion, isic_task1_score, isic_task2_score

__all__ = ["ISICTask2Metric", "binarize", "confusion", "isic_task1_score", "isic_task2_score"]
