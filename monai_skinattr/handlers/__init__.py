"""Ignite handlers and the engines' batch preparation used by the bundles."""

from .checkpoint import AtomicDiskSaver, EpochSeed, ResumableCheckpointSaver
from .loss_curves import LossCurves
from .precise_bn import PreciseBN
from .prepare_batch import PrepareBatchPlain, plain_tensors
from .segmentation_panels import SegmentationPanels

__all__ = [
    "AtomicDiskSaver",
    "EpochSeed",
    "LossCurves",
    "PreciseBN",
    "PrepareBatchPlain",
    "ResumableCheckpointSaver",
    "SegmentationPanels",
    "plain_tensors",
]
