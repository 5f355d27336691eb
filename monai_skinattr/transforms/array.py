"""Array transforms of monai_skinattr: lesion bounding-box crop, mask union, volume slicing and tiling.

Each class holds the logic; the dictionary twins in :mod:`monai_skinattr.transforms.dictionary` only route keys.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import iter_patch_position
from monai.inferers.merger import AvgMerger
from monai.transforms import Crop, Transform
from monai.transforms.utils import get_largest_connected_component_mask
from monai.utils import convert_to_tensor

__all__ = ["LesionBBoxCrop", "UnionMask", "SliceVolume", "TileGrid", "StitchTiles", "lesion_boxes", "tile_positions"]

logger = logging.getLogger(__name__)

#: metadata key set on a crop whose lesion mask was empty (the whole image was kept).
EMPTY_MASK_WARNING = "lesion_bbox_warning"
#: metadata key holding the crop box ``[start_0, start_1, ..., end_0, end_1, ...]`` in image pixels.
BBOX_KEY = "lesion_bbox"
#: metadata key holding a tile's upper-left corner (same name as MONAI's ``PatchKeys.LOCATION``).
LOCATION_KEY = "location"


def _name(x: object, role: str) -> str:
    """``role`` and, for a loaded image, its file (``meta["filename_or_obj"]``), for error messages."""
    source = x.meta.get("filename_or_obj") if isinstance(x, MetaTensor) else None
    return f"{role} '{source}'" if source else role


def check_finite(x: NdarrayOrTensor, role: str, owner: str) -> None:
    """Raise ``ValueError`` naming ``role`` (and its file) when ``x`` holds NaN or infinite values."""
    t = convert_to_tensor(x, track_meta=False)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{owner}: {_name(x, role)} holds {bad} NaN or infinite value(s) of {t.numel()}.")


def check_size(value: object, name: str, minimum: int) -> int:
    """``value`` as an ``int`` when it is an integer >= ``minimum`` (``4.0`` counts), else ``ValueError``."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (number and float(value).is_integer() and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def lesion_boxes(mask: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """
    The one definition of TATL's lesion box, batched and TorchScript-compilable (the cascade network cuts its crops
    with it; :class:`LesionBBoxCrop` too): per item of a ``(B, C, *spatial)`` boolean mask, the bounding box of
    the foreground of any channel, grown by ``offset`` pixels on every side and clipped to the grid — MONAI's
    ``generate_spatial_bounding_box(margin=offset, allow_smaller=True)`` — as ``(B, 2 * len(spatial))`` integers
    ``[starts..., ends...]`` (end exclusive). An empty mask gives the whole grid.

    .. code-block:: python

        mask = torch.zeros(1, 1, 30, 40, dtype=torch.bool); mask[0, 0, 5:9, 10:20] = True
        print(lesion_boxes(mask, offset=3))  # tensor([[ 2,  7, 12, 23]])
    """
    fg = mask.any(dim=1)
    starts: list[torch.Tensor] = []
    ends: list[torch.Tensor] = []
    for dim in range(1, fg.ndim):
        size = fg.shape[dim]
        hits = torch.movedim(fg, dim, -1).reshape(fg.shape[0], -1, size).any(dim=1)
        idx = torch.arange(size, device=fg.device).expand_as(hits)
        start = torch.where(hits, idx, size).min(dim=1).values
        end = torch.where(hits, idx, -1).max(dim=1).values + 1
        empty = ~hits.any(dim=1)
        starts.append(torch.where(empty, torch.zeros_like(start), (start - offset).clamp(min=0)))
        ends.append(torch.where(empty, torch.full_like(end, size), (end + offset).clamp(max=size)))
    return torch.stack(starts + ends, dim=1)


class LesionBBoxCrop(Crop):
    """
    Crop an image to the bounding box of a lesion mask grown by ``offset`` pixels on every side, as TATL does
    before its attribute segmenters (stage 1 lesion mask, 40 px offset, box clipped to the image).

    The mask may be smaller than the image (TATL predicts the lesion at 384x512 and crops the original photograph):
    the box is found and grown on the mask's own pixel grid, then scaled to the image. With
    ``offset_in="image"`` the tight box is scaled first and the offset is counted in image pixels. An empty mask
    keeps the whole image and records a warning in the metadata instead of raising. The crop is invertible, so
    ``Invertd`` puts a prediction made on the crop back into a zero canvas of the original size.

    .. code-block:: python

        import torch
        from monai_skinattr.transforms import LesionBBoxCrop

        image = torch.rand(3, 100, 200)
        mask = torch.zeros(1, 50, 100)
        mask[:, 20:30, 40:60] = 1
        crop = LesionBBoxCrop(offset=5)(image, mask)
        print(crop.shape, crop.meta["lesion_bbox"])
        # torch.Size([3, 40, 60]) [30, 70, 70, 130]

    Args:
        offset: pixels added on every side of the lesion's tight bounding box (TATL: 40).
        offset_in: ``"mask"`` counts ``offset`` on the mask's pixel grid (TATL's behaviour), ``"image"`` counts it
            in pixels of the image being cropped.
        largest_component: keep only the largest connected component of the mask before taking its box,
            which ignores small false-positive islands of a predicted mask.
        threshold: mask values strictly above this are lesion (0.5 suits probabilities and 0/1 or 0/255 masks).
    """

    def __init__(
        self,
        offset: int = 40,
        offset_in: Literal["mask", "image"] = "mask",
        largest_component: bool = False,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(lazy=False)
        self.offset = check_size(offset, "LesionBBoxCrop offset", 0)
        if offset_in not in ("mask", "image"):
            raise ValueError(f"offset_in must be 'mask' or 'image', got {offset_in!r}.")
        self.offset_in = offset_in
        self.largest_component = largest_component
        self.threshold = threshold

    def mask_box(self, mask: NdarrayOrTensor) -> tuple[list[int], list[int]] | None:
        """Box ``(start, end)`` of the lesion on the mask's grid (end exclusive), grown when ``offset_in="mask"``.

        Returns ``None`` for an empty mask.
        """
        check_finite(mask, "mask", "LesionBBoxCrop")
        fg = convert_to_tensor(mask, track_meta=False) > self.threshold
        if fg.ndim < 2:
            raise ValueError(f"mask must be channel-first with spatial dims, got shape {tuple(fg.shape)}.")
        fg = fg.any(dim=0, keepdim=True)
        if self.largest_component and fg.any():
            fg = get_largest_connected_component_mask(fg)
        if not fg.any():
            return None
        margin = self.offset if self.offset_in == "mask" else 0
        box = lesion_boxes(fg[None], margin)[0].tolist()
        return box[: fg.ndim - 1], box[fg.ndim - 1 :]

    def image_box(
        self, box: tuple[list[int], list[int]], mask_shape: Sequence[int], image_shape: Sequence[int]
    ) -> tuple[list[int], list[int]]:
        """Scale a mask-grid box to an image of ``image_shape`` (spatial), add an image offset, clip to the image."""
        start, end = box
        grow = self.offset if self.offset_in == "image" else 0
        img_start, img_end = [], []
        for s, e, m, n in zip(start, end, mask_shape, image_shape, strict=True):
            scale = n / m
            img_start.append(max(math.floor(s * scale) - grow, 0))
            img_end.append(min(math.ceil(e * scale) + grow, n))
        return img_start, img_end

    def __call__(self, img: torch.Tensor, mask: NdarrayOrTensor) -> torch.Tensor:  # type: ignore[override]
        """Crop channel-first ``img`` to the grown box of the channel-first ``mask`` (any spatial size)."""
        return self.crop(img, self.mask_box(mask), mask.shape[1:])

    def crop(
        self, img: torch.Tensor, box: tuple[list[int], list[int]] | None, mask_shape: Sequence[int]
    ) -> torch.Tensor:
        """Crop ``img`` to a box from :meth:`mask_box` (``None``: empty mask, keep the whole image)."""
        check_finite(img, "image", "LesionBBoxCrop")
        img_shape = list(img.shape[1:])
        if len(img_shape) != len(mask_shape):
            raise ValueError(
                f"image and mask must have the same number of spatial dims, got {img_shape} and {list(mask_shape)}."
            )
        if box is None:
            start, end = [0] * len(img_shape), img_shape
        else:
            start, end = self.image_box(box, mask_shape, img_shape)
        out = super().__call__(img, self.compute_slices(roi_start=start, roi_end=end), lazy=False)
        if isinstance(out, MetaTensor):
            out.meta[BBOX_KEY] = [*start, *end]
            if box is None:
                out.meta[EMPTY_MASK_WARNING] = "empty lesion mask: the whole image was kept"
                logger.warning("LesionBBoxCrop: empty lesion mask, keeping the whole image.")
        return out


class UnionMask(Transform):
    """
    Bitwise OR of any number of binary masks of the same shape into one binary mask: the target of TATL's
    attribute-agnostic segmenter. ``None`` entries (absent masks) are skipped and empty masks add nothing.

    .. code-block:: python

        import torch
        from monai_skinattr.transforms import UnionMask

        a = torch.tensor([[[0, 1], [0, 0]]])
        b = torch.tensor([[[0, 0], [255, 0]]])
        print(UnionMask()([a, None, b]))
        # tensor([[[0., 1.], [1., 0.]]])

    Args:
        threshold: values strictly above this count as foreground (0.5 suits 0/1, 0/255 and probabilities).
        dtype: dtype of the returned 0/1 mask.
    """

    def __init__(self, threshold: float = 0.5, dtype: torch.dtype = torch.float32) -> None:
        self.threshold = threshold
        self.dtype = dtype

    def __call__(self, masks: Sequence[NdarrayOrTensor | None]) -> torch.Tensor:
        present = [m for m in masks if m is not None]
        if not present:
            raise ValueError("UnionMask needs at least one mask, all were absent.")
        shapes = {tuple(m.shape) for m in present}
        if len(shapes) > 1:
            raise ValueError(f"UnionMask needs masks of one shape, got {sorted(shapes)}.")
        union = torch.zeros(present[0].shape, dtype=torch.bool)
        for m in present:
            check_finite(m, "mask", "UnionMask")
            union |= convert_to_tensor(m, track_meta=False).cpu() > self.threshold
        out = union.to(self.dtype)
        first = present[0]
        if isinstance(first, MetaTensor):
            out = MetaTensor(out, meta=dict(first.meta))
        return out


class SliceVolume(Transform):
    """
    Split a channel-first 3D volume into a list of 2D slices along a spatial axis, keeping the slice index in
    the metadata (``slice_index``, ``slice_axis``). Returning a list lets MONAI's ``Dataset``/``DataLoader``
    flatten the slices into 2D samples (ACDC short-axis slicing).

    .. code-block:: python

        import torch
        from monai_skinattr.transforms import SliceVolume

        slices = SliceVolume(axis=-1)(torch.rand(1, 64, 64, 10))
        print(len(slices), slices[3].shape, slices[3].meta["slice_index"])
        # 10 torch.Size([1, 64, 64]) 3

    Args:
        axis: spatial axis to slice along (0, 1, 2, or negative from the end); ACDC's short axis is the last one.
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def spatial_axis(self, img: torch.Tensor) -> int:
        """The slicing axis as an index into ``img.shape`` (channel dim excluded from ``axis``)."""
        spatial = img.ndim - 1
        if spatial != 3:
            raise ValueError(f"SliceVolume expects a channel-first 3D volume (C, H, W, D), got shape {img.shape}.")
        if not -spatial <= self.axis < spatial:
            raise ValueError(f"axis {self.axis} out of range for {spatial} spatial dims.")
        return self.axis % spatial + 1

    def __call__(self, img: NdarrayOrTensor) -> list[torch.Tensor]:
        vol = convert_to_tensor(img, track_meta=True)
        dim = self.spatial_axis(vol)
        meta = dict(vol.meta) if isinstance(vol, MetaTensor) else {}
        out = []
        for i in range(vol.shape[dim]):
            plane = vol.as_tensor().select(dim, i) if isinstance(vol, MetaTensor) else vol.select(dim, i)
            out.append(MetaTensor(plane.clone(), meta={**meta, "slice_index": i, "slice_axis": dim - 1}))
        return out


def tile_positions(size: Sequence[int], window: int, stride: int) -> list[tuple[int, ...]]:
    """Upper-left corners of ``window``-sized tiles at ``stride`` covering every pixel of ``size``.

    The regular grid comes from MONAI's ``iter_patch_position``; where the stride does not end exactly on the
    border, one more row/column of tiles is aligned with the border so no pixel is skipped.

    .. code-block:: python

        print(len(tile_positions((1120, 2240), 448, 112)))  # 119
    """
    window = check_size(window, "window", 1)
    stride = check_size(stride, "stride", 1)
    if stride > window:
        raise ValueError(f"stride {stride} > window {window} would leave gaps between tiles.")
    if any(s < window for s in size):
        raise ValueError(f"image of spatial size {tuple(size)} is smaller than the window {window}.")
    grid = list(iter_patch_position(tuple(size), (window,) * len(size), overlap=window - stride))
    per_axis = [sorted({p[d] for p in grid}) for d in range(len(size))]
    for axis_pos, s in zip(per_axis, size, strict=True):
        if axis_pos[-1] + window < s:
            axis_pos.append(s - window)
    mesh = np.meshgrid(*per_axis, indexing="ij")
    return [tuple(int(v) for v in p) for p in np.stack([m.ravel() for m in mesh], axis=1)]


class TileGrid(Transform):
    """
    Cut a channel-first image into ``window``-sized tiles at ``stride``, each tile a ``MetaTensor`` whose
    metadata holds its upper-left corner (``location``) and the full image size (``spatial_shape``) for
    :class:`StitchTiles`. Border tiles are aligned to the border, so no pixel is skipped. Optionally drops
    near-black tiles (e.g. outside the fundus field of view).

    IDRiD (thesis): a 1120x2240 image gives 119 training tiles at window 448 / stride 112 and 50 test tiles at
    window 224 / stride 224.

    .. code-block:: python

        import torch
        from monai_skinattr.transforms import TileGrid

        tiles = TileGrid(window=224, stride=224)(torch.rand(3, 1120, 2240))
        print(len(tiles), tiles[1].meta["location"])
        # 50 (0, 224)

    Args:
        window: tile side in pixels.
        stride: step between neighbouring tiles (``stride < window`` overlaps them).
        dark_threshold: if set, tiles whose mean intensity is at or below it are dropped. ``None`` keeps all.
    """

    def __init__(self, window: int, stride: int | None = None, dark_threshold: float | None = None) -> None:
        self.window = check_size(window, "TileGrid window", 1)
        self.stride = self.window if stride is None else check_size(stride, "TileGrid stride", 1)
        if self.stride > self.window:
            raise ValueError(f"TileGrid stride {self.stride} > window {self.window} would leave gaps between tiles.")
        self.dark_threshold = dark_threshold

    def positions(self, spatial_shape: Sequence[int]) -> list[tuple[int, ...]]:
        return tile_positions(spatial_shape, self.window, self.stride)

    def check_fits(self, img: torch.Tensor) -> None:
        """Raise ``ValueError`` naming ``img`` (and its file) when it is smaller than the window."""
        if any(s < self.window for s in img.shape[1:]):
            raise ValueError(
                f"TileGrid: {_name(img, 'image')} of spatial size {tuple(img.shape[1:])} is smaller than the "
                f"window {self.window}."
            )

    def keep(self, tile: torch.Tensor) -> bool:
        """Whether ``tile`` survives the near-black filter."""
        return self.dark_threshold is None or float(tile.float().mean()) > self.dark_threshold

    def crop(self, img: torch.Tensor, pos: Sequence[int]) -> MetaTensor:
        """The tile of ``img`` at ``pos`` with its location metadata."""
        slices = (slice(None), *(slice(p, p + self.window) for p in pos))
        meta = dict(img.meta) if isinstance(img, MetaTensor) else {}
        data = img.as_tensor() if isinstance(img, MetaTensor) else img
        meta.update({LOCATION_KEY: tuple(pos), "spatial_shape": tuple(img.shape[1:]), "window": self.window})
        return MetaTensor(data[slices].clone(), meta=meta)

    def __call__(self, img: NdarrayOrTensor) -> list[MetaTensor]:
        img_t = convert_to_tensor(img, track_meta=True)
        self.check_fits(img_t)
        tiles = [self.crop(img_t, p) for p in self.positions(img_t.shape[1:])]
        return [t for t in tiles if self.keep(t)]


class StitchTiles(Transform):
    """
    Put tile predictions back into one image, averaging where tiles overlap (MONAI's ``AvgMerger``).
    Tiles carry their ``location`` and the full ``spatial_shape`` in metadata (as :class:`TileGrid` writes
    them); both can also be passed explicitly. Pixels no tile covered (dropped dark tiles) are ``fill``. The result
    has the tiles' dtype, except integer tiles whose overlaps average to fractions: those come back as float32
    (two overlapping masks 0 and 1 give 0.5, not 0).

    .. code-block:: python

        import torch
        from monai_skinattr.transforms import StitchTiles, TileGrid

        img = torch.rand(1, 1120, 2240)
        print(torch.equal(StitchTiles()(TileGrid(224, 224)(img)), img))  # True

    Args:
        fill: value of pixels that no tile covers.
    """

    def __init__(self, fill: float = 0.0) -> None:
        self.fill = fill

    def __call__(
        self,
        tiles: Sequence[torch.Tensor],
        locations: Sequence[Sequence[int]] | None = None,
        spatial_shape: Sequence[int] | None = None,
    ) -> torch.Tensor:
        if not tiles:
            raise ValueError("StitchTiles needs at least one tile.")
        if locations is None:
            locations = [self._meta(t, LOCATION_KEY) for t in tiles]
        if spatial_shape is None:
            spatial_shape = self._meta(tiles[0], "spatial_shape")
        first = convert_to_tensor(tiles[0], track_meta=False)
        merger = AvgMerger(merged_shape=(1, first.shape[0], *spatial_shape), value_dtype=torch.float32)
        for tile, loc in zip(tiles, locations, strict=True):
            merger.aggregate(convert_to_tensor(tile, track_meta=False).float()[None], tuple(int(v) for v in loc))
        counts = merger.get_counts()[0]
        merged = merger.finalize()[0]
        merged[counts == 0] = self.fill
        if first.dtype.is_floating_point or torch.equal(merged, merged.round()):
            return merged.to(first.dtype)
        return merged  # integer tiles whose overlaps average to fractions: float32, never truncated

    @staticmethod
    def _meta(tile: torch.Tensor, key: str):
        if not isinstance(tile, MetaTensor) or key not in tile.meta:
            raise ValueError(f"tile has no '{key}' metadata; pass locations and spatial_shape explicitly.")
        value = tile.meta[key]
        return tuple(int(v) for v in (value.tolist() if hasattr(value, "tolist") else value))
