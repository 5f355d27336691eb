"""The transfer study's downstream transforms: the deterministic preprocessing of ACDC, COVID-QU-Ex and IDRiD, the
thesis' training augmentation, and the postprocessing the metrics score.

.. code-block:: python

    from monai_skinattr.apps.transfer import preprocessing

    train = preprocessing("acdc", "train")  # load, scale, slice along z, resize to 224x224
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    CastToTyped,
    CopyItemsd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    NormalizeIntensityd,
    RandAffined,
    RandFlipd,
    RandRotated,
    RandTorchVisiond,
    RepeatChanneld,
    Resized,
    ScaleIntensityRanged,
    ScaleIntensityRangePercentilesd,
    Transform,
)

from ...data.images import mask_reader, photo_reader
from ...transforms import LoadWithReaderd, SliceVolumed, TileGridd
from ...transforms.pipelines import IMAGENET_MEAN, IMAGENET_STD
from .datasets import dataset_spec

__all__ = [
    "IDRID_SIZE",
    "IDRID_STRIDE",
    "IDRID_WINDOW",
    "STAGES",
    "augmentation",
    "eval_postprocessing",
    "preprocessing",
]

#: the thesis' IDRiD geometry: images resized to 1120x2240, training windows of 448 at stride 112 (119 per image)
IDRID_SIZE, IDRID_WINDOW, IDRID_STRIDE = (1120, 2240), 448, 112
#: :func:`preprocessing` stages: training samples before augmentation, validation / test, inference of new images
STAGES = ("train", "eval", "infer")


def _load_2d(mode: str, label: bool) -> list[Transform]:
    """The photo in ``mode`` (``"L"``, ``"RGB"``) and the mask (any binary encoding, as 0/255), channel first."""
    out = [LoadWithReaderd("image", photo_reader(mode))]
    if label:
        out.append(LoadWithReaderd("label", mask_reader()))
    return [*out, EnsureChannelFirstd(["image", "label"] if label else "image")]


def preprocessing(
    dataset_name: str,
    stage: str = "eval",
    spatial_size: Sequence[int] = (224, 224),
    label: bool = True,
    idrid_size: Sequence[int] = IDRID_SIZE,
    idrid_window: int = IDRID_WINDOW,
    idrid_stride: int = IDRID_STRIDE,
) -> list[Transform]:
    """
    The deterministic preprocessing of ``dataset_name``, the same for training, validation, test and inference:

    - ACDC: the NIfTI frame scaled to [0, 1] by its 0–99.5th intensity percentiles, sliced along z
      (:class:`~monai_skinattr.transforms.SliceVolumed`), each slice resized to ``spatial_size``;
    - COVID-QU-Ex: the grey 8-bit X-ray scaled to [0, 1] and resized to ``spatial_size``;
    - IDRiD: the RGB photograph resized to ``idrid_size`` (area averaging); for training cut into
      ``idrid_window`` windows at ``idrid_stride`` (:class:`~monai_skinattr.transforms.TileGridd`, 119 per image
      at the thesis' sizes), kept 8-bit to hold the 6426 windows of the real data in 3.9 GB.

    Images resize bilinearly (IDRiD: by area), labels by nearest neighbour, never interpolated; masks are binarised
    (any non-zero value). ``stage``: ``"train"`` stops there (:func:`augmentation` follows); ``"eval"`` and
    ``"infer"`` add the network input (grey repeated to 3 channels, ImageNet mean/std). ``"infer"`` keeps an ACDC
    frame whole, resized in-plane, for :func:`inferer`'s slice-by-slice inference. Stages returning lists (ACDC
    slices, IDRiD windows) are flattened by :func:`expand` or by the data loader.

    .. code-block:: python

        samples = expand(splits["training"], preprocessing("idrid", "train"))  # 119 windows per image
    """
    spec = dataset_spec(dataset_name)
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got '{stage}'.")
    keys = ["image", "label"] if label else ["image"]
    modes = ["bilinear", "nearest"][: len(keys)]
    if dataset_name == "acdc":
        out: list[Transform] = [
            LoadImaged(keys, image_only=True),
            EnsureChannelFirstd(keys),
            ScaleIntensityRangePercentilesd("image", lower=0.0, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
        ]
        if stage == "infer":
            out.append(Resized("image", spatial_size=(*spatial_size, -1), mode="bilinear"))
        else:
            out += [SliceVolumed(keys, axis=-1), Resized(keys, spatial_size=spatial_size, mode=modes)]
    elif dataset_name == "covidqu":
        out = _load_2d("L", label)
        out += [
            ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
            Resized(keys, spatial_size=spatial_size, mode=modes),
        ]
    else:
        out = _load_2d("RGB", label)
        out.append(Resized(keys, spatial_size=idrid_size, mode=["area", "nearest"][: len(keys)]))
    if label and dataset_name != "acdc":
        out.append(AsDiscreted("label", threshold=0.5))
    if stage == "train":
        if dataset_name == "idrid":
            out += [CastToTyped(keys, dtype=torch.uint8), TileGridd(keys, window=idrid_window, stride=idrid_stride)]
        return out
    if dataset_name == "idrid":
        out.append(ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True))
    return out + _network_input(spec["channels"], keys)


def augmentation(
    dataset_name: str, spatial_size: Sequence[int] = (224, 224), idrid_window: int = IDRID_WINDOW
) -> list[Transform]:
    """
    The thesis' random augmentation of a training sample from :func:`preprocessing` (``"train"``), then the network
    input: rotation by an angle drawn from U[0, π] (labels nearest, zero padding) and a vertical flip with
    probability 0.5. IDRiD: the rotation picks a ``spatial_size`` square turned by that angle and shifted at random
    inside the window (never leaving it; MONAI ``RandAffined``), then colour jitter (torchvision's ``ColorJitter``:
    brightness 0.1, contrast 0.05, saturation 0.1, hue 0.05 — the values of the thesis authors' released configs,
    which the thesis text lost).

    .. code-block:: python

        train_ds = Dataset(expand(splits["training"], preprocessing("acdc", "train")), Compose(augmentation("acdc")))
    """
    spec = dataset_spec(dataset_name)
    keys = ["image", "label"]
    if dataset_name == "idrid":
        shift = max((idrid_window - math.sqrt(2) * max(spatial_size)) // 2, 0)
        out: list[Transform] = [
            RandAffined(
                keys,
                spatial_size=spatial_size,
                prob=1.0,
                rotate_range=((0.0, math.pi),),
                translate_range=(shift, shift),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
            ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
            RandTorchVisiond("image", name="ColorJitter", brightness=0.1, contrast=0.05, saturation=0.1, hue=0.05),
        ]
    else:
        out = [
            RandRotated(keys, range_x=(0.0, math.pi), prob=1.0, keep_size=True, mode=("bilinear", "nearest")),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
        ]
    return out + _network_input(spec["channels"], keys)


def _network_input(channels: int, keys: Sequence[str]) -> list[Transform]:
    """Grey repeated to 3 channels, ImageNet mean/std (as the encoders were pretrained), float32."""
    out: list[Transform] = [RepeatChanneld("image", repeats=3)] if channels == 1 else []
    return [
        *out,
        NormalizeIntensityd("image", subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True),
        EnsureTyped(list(keys), dtype=torch.float32),
    ]


def eval_postprocessing(num_classes: int) -> list[Transform]:
    """
    Predictions and labels as one-hot maps of ``num_classes`` channels (background first) for the metrics; the
    logits and class labels are kept as ``"logits"`` and ``"target"`` for the validation loss. Two classes: a sigmoid
    over the one output channel thresholded at 0.5 (as the thesis); more: the arg-max class.
    """
    out: list[Transform] = [CopyItemsd(["pred", "label"], names=["logits", "target"])]
    if num_classes == 2:
        out += [Activationsd("pred", sigmoid=True), AsDiscreted("pred", threshold=0.5)]
    else:
        out.append(AsDiscreted("pred", argmax=True))
    return [*out, AsDiscreted(["pred", "label"], to_onehot=num_classes)]
