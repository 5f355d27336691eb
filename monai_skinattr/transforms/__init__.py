"""MONAI-style transforms of monai_skinattr (array classes and their dictionary twins)."""

from .array import LesionBBoxCrop, SliceVolume, StitchTiles, TileGrid, UnionMask, lesion_boxes, tile_positions
from .dictionary import (
    LesionBBoxCropD,
    LesionBBoxCropd,
    LesionBBoxCropDict,
    SliceVolumeD,
    SliceVolumed,
    SliceVolumeDict,
    TileGridD,
    TileGridd,
    TileGridDict,
    UnionMaskD,
    UnionMaskd,
    UnionMaskDict,
)
from .io import LoadPhoto, LoadPhotod, LoadWithReaderd, SaveMaskd
from .pipelines import lesion_preprocessing, read_photo_and_masks

__all__ = [
    "LoadPhoto",
    "LoadWithReaderd",
    "LoadPhotod",
    "SaveMaskd",
    "LesionBBoxCrop",
    "LesionBBoxCropd",
    "LesionBBoxCropD",
    "LesionBBoxCropDict",
    "SliceVolume",
    "SliceVolumed",
    "SliceVolumeD",
    "SliceVolumeDict",
    "StitchTiles",
    "TileGrid",
    "TileGridd",
    "TileGridD",
    "TileGridDict",
    "UnionMask",
    "UnionMaskd",
    "UnionMaskD",
    "UnionMaskDict",
    "lesion_boxes",
    "lesion_preprocessing",
    "read_photo_and_masks",
    "tile_positions",
]
