"""Ignite handlers used by the bundles."""

from .loss_curves import LossCurves
from .precise_bn import PreciseBN
from .segmentation_panels import SegmentationPanels

__all__ = ["LossCurves", "PreciseBN", "SegmentationPanels"]
