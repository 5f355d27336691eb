"""The preprocessing of a 2D lesion segmentation bundle, defined once for training, validation and inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import (
    AsDiscreted,
    EnsureChannelFirstd,
    EnsureTyped,
    NormalizeIntensityd,
    RandFlipd,
    RandScaleIntensityFixedMeand,
    RandShiftIntensityd,
    Resized,
    ScaleIntensityRanged,
    Transform,
)
from monai.utils import ensure_tuple

from ..data.images import mask_reader, photo_reader
from .io import LoadWithReaderd

__all__ = ["lesion_preprocessing", "read_photo_and_masks", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_photo_and_masks(photo_keys: KeysCollection, mask_keys: KeysCollection = ()) -> list[Transform]:
    """
    ``LoadImaged`` of photos (upright by EXIF orientation, 16-bit greyscale scaled to 8 bits) and of masks (every
    binary encoding read as 0/255; anything else refused by file name), both row-major ``(H, W[, C])``: see
    :mod:`monai_skinattr.data.images`. Every pipeline of the library and its apps reads files through this.

    .. code-block:: python

        load = Compose(read_photo_and_masks("image", ["label"]))  # a 0/1 label PNG loads as 0/255
    """
    photos, masks = ensure_tuple(photo_keys), ensure_tuple(mask_keys)
    out: list[Transform] = []
    if photos:
        out.append(LoadWithReaderd(photos, photo_reader()))
    if masks:
        out.append(LoadWithReaderd(masks, mask_reader()))
    return out


def lesion_preprocessing(
    spatial_size: Sequence[int],
    label: bool = True,
    resize_label: bool = True,
    normalization: str = "imagenet",
    augment: bool = False,
) -> list[Transform]:
    """
    Read an RGB photo (and its ``label`` mask, any binary encoding: :func:`read_photo_and_masks`) with PIL,
    row-major, scale 0..255 to 0..1, resize the photo to
    ``spatial_size`` (bilinear; the mask by nearest neighbour when ``resize_label``, then binarised), with
    ``augment`` random flips on both axes, brightness shift and contrast scaling (on [0, 1]), then normalise:
    ``"imagenet"`` mean/std per channel or ``"instance"`` (per-image channel-wise standardisation).

    .. code-block:: python

        train = Compose(lesion_preprocessing([128, 128], augment=True))
        infer = Compose(lesion_preprocessing([128, 128], label=False))
    """
    keys = ["image", "label"] if label else ["image"]
    out: list[Transform] = [
        *read_photo_and_masks("image", keys[1:]),
        EnsureChannelFirstd(keys),
        ScaleIntensityRanged(keys, a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
        Resized("image", spatial_size=spatial_size, mode="bilinear"),
    ]
    if label:
        if resize_label:
            out.append(Resized("label", spatial_size=spatial_size, mode="nearest"))
        out.append(AsDiscreted("label", threshold=0.5))
    if augment:
        both = ["image", "label"] if label else ["image"]
        out += [
            RandFlipd(both, prob=0.5, spatial_axis=0),
            RandFlipd(both, prob=0.5, spatial_axis=1),
            RandShiftIntensityd("image", prob=0.5, offsets=0.1),
            RandScaleIntensityFixedMeand("image", prob=0.5, factors=0.2, preserve_range=True),
        ]
    if normalization == "imagenet":
        out.append(NormalizeIntensityd("image", subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True))
    elif normalization == "instance":
        out.append(NormalizeIntensityd("image", channel_wise=True))
    elif normalization != "none":
        raise ValueError(f"normalization must be 'imagenet', 'instance' or 'none', got '{normalization}'.")
    return [*out, EnsureTyped(keys, dtype=torch.float32)]
