"""monai_skinattr: a MONAI add-on for skin-lesion attribute detection and related medical segmentation methods."""

__version__ = "0.1.0"
