"""How every photo and mask file is read, so an image is used as the person who saved it meant it.

- **Photos** are turned upright by their EXIF orientation tag (what every viewer shows, and the frame masks are
  drawn and predictions written in) and 16-bit greyscale is scaled to 8 bits (65535 -> 255; Pillow already reads
  16-bit RGB PNG and TIFF as 8-bit RGB). Other high-depth modes (32-bit integer or float) are refused by name.
- **Masks** may be stored in any two-level binary encoding: 0/255, 0/1 (greyscale or palette indices), bool (1-bit
  PNG) or 16-bit 0/65535; all are read as the same foreground. A mask with any other values (anti-aliased edges,
  a label map, a photo saved by mistake) is refused with its file name and the values found.

.. code-block:: python

    from monai.transforms import LoadImaged

    load = [LoadImaged("image", reader=photo_reader(), reverse_indexing=False, image_only=True),
            LoadImaged("label", reader=mask_reader(), reverse_indexing=False, image_only=True)]  # label: 0/255
    print(read_mask("ISIC_0000000_attribute_globules.png").sum())  # foreground pixels, whatever the encoding
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from monai.data import PILReader
from PIL import Image, ImageOps

__all__ = [
    "MASK_LEVELS",
    "MaskEncodingError",
    "displayed_size",
    "upright",
    "photo_image",
    "mask_values",
    "binary_mask",
    "mask_image",
    "read_photo",
    "read_mask",
    "photo_reader",
    "mask_reader",
]

#: the foreground value of each binary mask encoding read (the background is 0): 0/1 (and bool and palette
#: indices), 0/255, 16-bit 0/65535
MASK_LEVELS = (1, 255, 65535)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_ORIENTATION = 0x0112  # EXIF tag; values 5-8 turn the picture by 90 degrees


class MaskEncodingError(ValueError):
    """A mask file is not a two-level binary mask in one of the encodings :data:`MASK_LEVELS`."""


def displayed_size(im: Image.Image) -> tuple[int, int]:
    """``(H, W)`` of the opened ``im`` as displayed (after its EXIF orientation), read from the header only."""
    if im.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
        return im.width, im.height
    return im.height, im.width


def upright(im: Image.Image) -> Image.Image:
    """``im`` turned by its EXIF orientation tag, as viewers display it (PIL ``ImageOps.exif_transpose``)."""
    return ImageOps.exif_transpose(im) if im.getexif().get(_ORIENTATION, 1) != 1 else im


def photo_image(im: Image.Image, mode: str | None = None) -> Image.Image:
    """
    The opened photo ``im`` upright, 16-bit greyscale scaled to 8 bits, then converted to ``mode`` (``"RGB"``,
    ``"L"``; ``None`` keeps the file's 8-bit mode).

    Raises:
        ValueError: a 32-bit integer or floating-point image (no 8-bit range to scale it to), named.
    """
    name = getattr(im, "filename", "") or "photo"
    im = upright(im)
    if im.mode in _SIXTEEN_BIT:
        im = Image.fromarray(np.round(np.asarray(im, dtype=np.float64) / 257.0).astype(np.uint8))
    elif im.mode in ("I", "F"):
        raise ValueError(
            f"{name}: {'32-bit integer' if im.mode == 'I' else 'floating-point'} image; photos are read as 8 or "
            "16 bits per channel: save it as an 8- or 16-bit PNG or TIFF"
        )
    return im.convert(mode) if mode and im.mode != mode else im


def mask_values(arr: np.ndarray) -> np.ndarray:
    """The distinct values of the integer or bool mask ``arr``, sorted (a bincount: linear time, no sort)."""
    if arr.dtype == bool:
        return np.flatnonzero(np.bincount(arr.ravel().view(np.uint8), minlength=2))
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        return np.flatnonzero(np.bincount(arr.ravel()))
    return np.unique(arr)


def binary_mask(arr: np.ndarray, name: str | Path = "mask") -> np.ndarray:
    """
    The foreground of the decoded mask ``arr`` as a bool array: (H, W) values 0 and one level of :data:`MASK_LEVELS`,
    or (H, W, C) black and one colour whose non-zero channels are one level (a grey mask saved as RGB, IDRiD's red
    lesions).

    Raises:
        MaskEncodingError: other values or colours; the message names ``name`` and what was found.
    """
    if arr.ndim == 3:
        return _colour_mask(arr, name)
    if arr.dtype == bool:
        return arr
    values = mask_values(arr)
    levels = values[values != 0]
    if len(levels) == 0:
        return np.zeros(arr.shape, dtype=bool)
    if len(levels) == 1 and levels[0] in MASK_LEVELS:
        return arr == levels[0]
    shown = ", ".join(str(v) for v in values[:8].tolist()) + (", ..." if len(values) > 8 else "")
    raise MaskEncodingError(
        f"{name}: mask is not binary: {len(values)} values ({shown}); expected 0 and one of 1, 255 or 65535 "
        "(0/1 greyscale or palette, 0/255, bool, 16-bit 0/65535)"
    )


def _colour_mask(arr: np.ndarray, name: str | Path) -> np.ndarray:
    """:func:`binary_mask` of an (H, W, C) mask: black and one colour."""
    flat = arr.reshape(-1, arr.shape[2])
    lit = flat.any(axis=1)
    colours = np.unique(flat[lit], axis=0) if lit.any() else flat[:0]
    if len(colours) == 0:
        return np.zeros(arr.shape[:2], dtype=bool)
    levels = set(colours[0][colours[0] != 0].tolist())
    if len(colours) == 1 and len(levels) == 1 and levels <= set(MASK_LEVELS):
        return lit.reshape(arr.shape[:2])
    shown = ", ".join(str(tuple(c)) for c in colours[:4].tolist()) + (", ..." if len(colours) > 4 else "")
    raise MaskEncodingError(
        f"{name}: mask is not binary: black and {len(colours)} colours ({shown}); expected black and one colour "
        "(or one channel with 0 and one of 1, 255 or 65535)"
    )


def mask_image(im: Image.Image) -> Image.Image:
    """The opened mask ``im`` upright, as an 8-bit 0/255 greyscale image (see :func:`binary_mask`)."""
    name = getattr(im, "filename", "") or "mask"
    return Image.fromarray(binary_mask(np.asarray(upright(im)), name).astype(np.uint8) * 255)


def read_photo(path: str | Path, mode: str | None = None) -> np.ndarray:
    """The photo file ``path`` decoded as :func:`photo_image` returns it, an (H, W[, C]) uint8 array."""
    with Image.open(path) as im:
        return np.asarray(photo_image(im, mode))


def read_mask(path: str | Path) -> np.ndarray:
    """The mask file ``path`` upright, as an (H, W) bool array (see :func:`binary_mask`)."""
    with Image.open(path) as im:
        return binary_mask(np.asarray(upright(im)), path)


def _converted(im: Image.Image, before: Callable[[Image.Image], Image.Image] | None, mode: str | None) -> Image.Image:
    return photo_image(before(im) if before else im, mode)


def photo_reader(mode: str | None = None, before: Callable[[Image.Image], Image.Image] | None = None) -> PILReader:
    """
    MONAI's ``PILReader`` (row-major) that reads photos as :func:`photo_image` (``before``: applied to the opened
    file first, e.g. a JPEG ``draft``).
    """
    return PILReader(converter=partial(_converted, before=before, mode=mode), reverse_indexing=False)


def mask_reader() -> PILReader:
    """MONAI's ``PILReader`` (row-major) that reads any binary mask encoding as 0/255 (:func:`mask_image`)."""
    return PILReader(converter=mask_image, reverse_indexing=False)
