"""Dictionary twins of :mod:`monai_skinattr.transforms.array`: they route keys, the array classes do the work."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Literal

import torch
from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import convert_to_tensor

from .array import LesionBBoxCrop, SliceVolume, TileGrid, UnionMask

__all__ = [
    "LesionBBoxCropd",
    "LesionBBoxCropD",
    "LesionBBoxCropDict",
    "UnionMaskd",
    "UnionMaskD",
    "UnionMaskDict",
    "SliceVolumed",
    "SliceVolumeD",
    "SliceVolumeDict",
    "TileGridd",
    "TileGridD",
    "TileGridDict",
]


class LesionBBoxCropd(MapTransform, InvertibleTransform):
    """
    Dictionary-based :class:`~monai_skinattr.transforms.LesionBBoxCrop`: the box is found once on
    ``data[mask_key]`` and scaled to each key's own spatial size, so a 384x512 predicted lesion can crop the
    full-size photograph and its attribute masks. Invertible with ``Invertd``.

    .. code-block:: python

        from monai_skinattr.transforms import LesionBBoxCropd

        crop = LesionBBoxCropd(keys=["image", "label"], mask_key="lesion", offset=40)

    Args:
        keys: keys of the items to crop.
        mask_key: key of the lesion mask (any spatial size; it is not cropped unless listed in ``keys``).
        offset, offset_in, largest_component, threshold: see :class:`~monai_skinattr.transforms.LesionBBoxCrop`.
        allow_missing_keys: don't raise if a key in ``keys`` is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str,
        offset: int = 40,
        offset_in: Literal["mask", "image"] = "mask",
        largest_component: bool = False,
        threshold: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.cropper = LesionBBoxCrop(offset, offset_in, largest_component, threshold)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if self.mask_key not in d:
            raise KeyError(f"LesionBBoxCropd: mask key '{self.mask_key}' not in the data (keys: {list(d)}).")
        mask = d[self.mask_key]
        box = self.cropper.mask_box(mask)
        for key in self.key_iterator(d):
            d[key] = self.cropper.crop(d[key], box, mask.shape[1:])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.cropper.inverse(d[key])
        return d


class UnionMaskd(MapTransform):
    """
    Dictionary-based :class:`~monai_skinattr.transforms.UnionMask`: OR of the masks under ``keys`` written to
    ``output_key``. Missing keys and ``None`` values are absent masks, skipped (TATL's stage-2 target is the
    union of whichever attribute masks an image has).

    .. code-block:: python

        from monai_skinattr.data.isic import ATTRIBUTES
        from monai_skinattr.transforms import UnionMaskd

        union = UnionMaskd(keys=ATTRIBUTES, output_key="union")

    Args:
        keys: keys of the binary masks.
        output_key: key the union is written to.
        threshold: see :class:`~monai_skinattr.transforms.UnionMask`.
        allow_missing_keys: skip keys that are not in the data (default ``True``); at least one must be present.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_key: str = "union",
        threshold: float = 0.5,
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key
        self.union = UnionMask(threshold)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        masks = [d[key] for key in self.key_iterator(d)]
        if all(m is None for m in masks):
            raise ValueError(f"UnionMaskd: none of the keys {list(self.keys)} holds a mask.")
        d[self.output_key] = self.union(masks)
        return d


class SliceVolumed(MapTransform):
    """
    Dictionary-based :class:`~monai_skinattr.transforms.SliceVolume`: one dict per slice, each holding the
    slices of every key (image and label stay paired), the other items copied, and ``slice_index``.

    .. code-block:: python

        from monai_skinattr.transforms import SliceVolumed

        slicer = SliceVolumed(keys=["image", "label"], axis=-1)

    Args:
        keys: keys of the volumes to slice; all must have the same size along ``axis``.
        axis: spatial axis to slice along.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(self, keys: KeysCollection, axis: int = -1, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slicer = SliceVolume(axis)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> list[dict[Hashable, torch.Tensor]]:
        d = dict(data)
        sliced = {key: self.slicer(d[key]) for key in self.key_iterator(d)}
        counts = {key: len(v) for key, v in sliced.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"SliceVolumed: keys have different numbers of slices along the axis: {counts}.")
        n = next(iter(counts.values()), 0)
        return [{**d, **{key: v[i] for key, v in sliced.items()}, "slice_index": i} for i in range(n)]


class TileGridd(MapTransform):
    """
    Dictionary-based :class:`~monai_skinattr.transforms.TileGrid`: one dict per tile with the tiles of every key
    at the same position (image and mask stay paired), the other items copied, and ``location``.

    .. code-block:: python

        from monai_skinattr.transforms import TileGridd

        tiler = TileGridd(keys=["image", "label"], window=448, stride=112, dark_threshold=0.05)

    Args:
        keys: keys of the images to tile; all must have the same spatial size.
        window, stride, dark_threshold: see :class:`~monai_skinattr.transforms.TileGrid`.
        dark_key: key whose tile decides the near-black drop (default: the first key).
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        window: int,
        stride: int | None = None,
        dark_threshold: float | None = None,
        dark_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.tiler = TileGrid(window, stride, dark_threshold)
        self.dark_key = dark_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> list[dict[Hashable, torch.Tensor]]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        for key in keys:
            d[key] = convert_to_tensor(d[key], track_meta=True)
        shapes = {key: tuple(d[key].shape[1:]) for key in keys}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"TileGridd: keys have different spatial sizes: {shapes}.")
        self.tiler.check_fits(d[keys[0]])
        dark_key = self.dark_key or keys[0]
        out = []
        for pos in self.tiler.positions(shapes[keys[0]]):
            tiles = {key: self.tiler.crop(d[key], pos) for key in keys}
            if self.tiler.keep(tiles[dark_key]):
                out.append({**d, **tiles, "location": pos})
        return out


LesionBBoxCropD = LesionBBoxCropDict = LesionBBoxCropd
UnionMaskD = UnionMaskDict = UnionMaskd
SliceVolumeD = SliceVolumeDict = SliceVolumed
TileGridD = TileGridDict = TileGridd
