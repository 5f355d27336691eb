"""The preprocessing of a 2D lesion segmentation bundle, defined once for training, validation and inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.transforms import (
    AsDiscreted,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    NormalizeIntensityd,
    RandFlipd,
    RandScaleIntensityFixedMeand,
    RandShiftIntensityd,
    Resized,
    ScaleIntensityRanged,
    Transform,
)

__all__ = ["lesion_preprocessing", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def lesion_preprocessing(
    spatial_size: Sequence[int],
    label: bool = True,
    resize_label: bool = True,
    normalization: str = "imagenet",
    augment: bool = False,
) -> list[Transform]:
    """
    Read an RGB photo (and its ``label`` mask) with PIL, row-major, scale 0..255 to 0..1, resize the photo to
    ``spatial_size`` (bilinear; the mask by nearest neighbour when ``resize_label``, then binarised), with
    ``augment`` random flips on both axes, brightness shift and contrast scaling (on [0, 1]), then normalise:
    ``"imagenet"`` mean/std per channel or ``"instance"`` (per-image channel-wise standardisation).

    .. code-block:: python

        train = Compose(lesion_preprocessing([128, 128], augment=True))
        infer = Compose(lesion_preprocessing([128, 128], label=False))
    """
    keys = ["image", "label"] if label else ["image"]
    out: list[Transform] = [
        LoadImaged(keys, reader="PILReader", reverse_indexing=False, image_only=True),
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
