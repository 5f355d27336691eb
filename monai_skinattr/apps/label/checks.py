"""Photos and labels a client sends, checked before anything uses them; what is wrong comes back as an HTTP 4xx."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from fastapi import HTTPException
from PIL import Image

from monai_skinattr.data.checks import channels, read_2d
from monai_skinattr.data.images import displayed_size

__all__ = ["check_photo", "read_label", "read_label_map"]


def check_photo(path: str | Path, what: str = "photo") -> tuple[int, int]:
    """
    The ``(height, width)`` of a photo after decoding all of it (JPEGs at 1/8 scale: every byte is still read, so
    a truncated file fails); HTTP 415 when it is not a readable image, 422 when it is not RGB.

    .. code-block:: python

        check_photo("studies/ISIC_0000000.jpg")  # (450, 600)
    """
    try:
        with Image.open(path) as im:
            size = displayed_size(im)  # the frame masks are drawn and predicted in
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
            n = channels(np.asarray(im))
    except Exception as e:  # PIL raises several types for corrupt files
        raise HTTPException(415, f"the {what} is not a readable image ({e})") from e
    if n != 3:
        raise HTTPException(422, f"the {what} has {n} channel(s); an RGB photo is expected")
    return size


def _read_single_channel(path: str | Path, size: tuple[int, int], what: str) -> np.ndarray:
    """A submitted single-channel image of the photo's ``size``; HTTP 415 / 422 otherwise."""
    try:
        mask = read_2d(path)
    except Exception as e:
        raise HTTPException(415, f"the {what} is not a readable image ({e})") from e
    if mask.ndim != 2:
        raise HTTPException(422, f"the {what} has {channels(mask)} channels; a single-channel image is expected")
    if mask.shape != tuple(size):
        raise HTTPException(
            422, f"the {what} is {mask.shape[0]}x{mask.shape[1]} (height x width), its photo {size[0]}x{size[1]}"
        )
    return mask


def read_label(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """
    A submitted mask as a 0/255 ``uint8`` array; it must decode, be single-channel, of the photo's ``size``
    ``(height, width)`` and binary (0 and one foreground value: 1, 255 or the map's label value). HTTP 415 when it is
    not a readable image, 422 when it is not such a mask.

    .. code-block:: python

        mask = read_label("corrected_lesion.png", check_photo("studies/ISIC_0000000.jpg"))
    """
    mask = _read_single_channel(path, size, "label")
    values = np.unique(mask)
    if (values > 0).sum() > 1:
        raise HTTPException(422, f"the label is not binary (values {values[:8].tolist()}...); 0 and one value expected")
    return (mask > 0).astype(np.uint8) * 255


def read_label_map(path: str | Path, size: tuple[int, int], values: Mapping[str, int]) -> dict[str, np.ndarray]:
    """
    A submitted label map (one value per mask, ``values``: mask name -> value, 0 background) as one 0/255 ``uint8``
    mask per name. The first name is the lesion: every labelled pixel (the attributes lie inside it); each other
    mask is the pixels of its value, empty when the value is absent. It must decode, be single-channel, of the photo's
    ``size`` ``(height, width)``, hold a lesion and no other value: HTTP 415 / 422 otherwise.

    .. code-block:: python

        masks = read_label_map("annotation.png", (450, 600), {"lesion": 1, "globules": 3, "streaks": 7})
        sorted(masks)  # ['globules', 'lesion', 'streaks']
    """
    label_map = _read_single_channel(path, size, "label map")
    found = set(np.unique(label_map).tolist())
    unknown = sorted(found - {0, *values.values()})
    if unknown:
        legend = ", ".join(f"{v} {k}" for k, v in values.items())
        raise HTTPException(
            422, f"the label map has values {unknown} that are no mask's; the values are 0 background, {legend}"
        )
    if found <= {0}:
        raise HTTPException(422, "the label map is empty: it holds no lesion (0 is background)")
    lesion, *others = values
    masks = {lesion: label_map > 0}
    masks.update({name: label_map == values[name] for name in others})
    return {name: mask.astype(np.uint8) * 255 for name, mask in masks.items()}
