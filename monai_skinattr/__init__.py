"""monai_skinattr: a MONAI add-on for skin-lesion attribute detection and related medical segmentation methods."""

from . import config, data, handlers, losses, metrics, networks, runner, transforms, utils, visualize

__version__ = "0.1.0"
__all__ = [
    "config",
    "data",
    "handlers",
    "losses",
    "metrics",
    "networks",
    "runner",
    "transforms",
    "utils",
    "visualize",
]
