"""monai_skinattr: a MONAI add-on for skin-lesion attribute detection and related medical segmentation methods."""

from . import data, handlers, losses, metrics, networks, transforms, visualize

__version__ = "0.1.0"
__all__ = ["data", "handlers", "losses", "metrics", "networks", "transforms", "visualize"]
