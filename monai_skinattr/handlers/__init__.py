"""Ignite handlers used by the bundles."""

from .checkpoint import AtomicDiskSaver, EpochSeed, ResumableCheckpointSaver
from .loss_curves import LossCurves
from .precise_bn import PreciseBN
from .segmentation_panels import SegmentationPanels

__all__ = ["AtomicDiskSaver", "EpochSeed", "LossCurves", "PreciseBN", "ResumableCheckpointSaver", "SegmentationPanels"]
