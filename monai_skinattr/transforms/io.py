"""Writing predicted masks from a MONAI post-processing chain (atomic PNGs named after the image)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from ..data.io import save_image_atomic

__all__ = ["SaveMaskd", "image_id", "mask8"]


def image_id(data: Mapping) -> str:
    """The item's ``id``, else the stem of its image file (``meta["filename_or_obj"]``)."""
    if "id" in data:
        return str(data["id"])
    meta = getattr(data.get("image"), "meta", {}) or {}
    return Path(str(meta.get("filename_or_obj", "image"))).stem


def mask8(prob: torch.Tensor, threshold: float) -> np.ndarray:
    """A probability (or 0/1) map as a 0/255 uint8 mask."""
    return (prob.detach().cpu().numpy() >= threshold).astype(np.uint8) * 255


class SaveMaskd(MapTransform):
    """
    Write the first channel of ``keys`` as a 0/255 PNG ``<output_dir>/<id><suffix>`` (atomic), e.g. the ISIC
    scorer's ``ISIC_0000001_segmentation.png``. MONAI's ``SaveImaged`` with ``PILWriter`` would need a transpose
    for row-major (``reverse_indexing=False``) images and does not write atomically.

    .. code-block:: python

        SaveMaskd(keys="pred", output_dir="out", suffix="_segmentation.png")
    """

    def __init__(self, keys: KeysCollection, output_dir: str | Path, suffix: str, threshold: float = 0.5) -> None:
        super().__init__(keys)
        self.output_dir = Path(output_dir)
        self.suffix = suffix
        self.threshold = threshold

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            save_image_atomic(mask8(d[key][0], self.threshold), self.output_dir / f"{image_id(d)}{self.suffix}")
        return d
