"""Reading photos into a MONAI pre-processing chain (large JPEGs decoded at a reduced scale, invertibly) and writing
predicted masks from a post-processing chain (atomic PNGs named after the image)."""

from __future__ import annotations

import io
import zlib
from collections.abc import Hashable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection, PathLike
from monai.data import ImageReader, MetaTensor
from monai.transforms import InvertibleTransform, LoadImage, LoadImaged, MapTransform, Resize
from monai.utils import TraceKeys
from PIL import Image

from ..data.checks import draft
from ..data.images import displayed_size, photo_reader
from ..utils.io import write_bytes_atomic
from .array import check_size

__all__ = [
    "LoadWithReaderd",
    "LoadPhoto",
    "LoadPhotod",
    "LoadPhotoD",
    "LoadPhotoDict",
    "SaveMaskd",
    "image_id",
    "mask8",
    "save_mask",
]


class LoadWithReaderd(LoadImaged):
    """
    MONAI's ``LoadImaged`` that reads with ``reader`` and nothing else. ``LoadImaged(reader=...)`` falls back to its
    default readers (ITK, PIL...) when the given one raises, so a file that ``reader`` refuses (an ambiguous mask,
    a 32-bit photo) would be read silently, without the reader's conversion (EXIF turn, mask encoding). Here the
    reader's error reaches the caller.

    .. code-block:: python

        load = LoadWithReaderd("label", mask_reader())  # a mask with values 0, 128, 255 raises, naming the file
    """

    def __init__(self, keys: KeysCollection, reader: ImageReader, **kwargs: Any) -> None:
        super().__init__(keys, reader=reader, image_only=True, **kwargs)
        self.reader = reader

    def __call__(self, data: Mapping, reader: ImageReader | None = None) -> dict:
        return super().__call__(data, reader or self.reader)


class LoadPhoto(InvertibleTransform):
    """
    Load a photo with PIL as ``(H, W[, C])`` row-major, upright by its EXIF orientation and 16-bit greyscale scaled
    to 8 bits (:func:`monai_skinattr.data.images.photo_reader`), and decode a JPEG longer than ``long_side`` at the
    smallest of its DCT scales (1/2, 1/4, 1/8) whose long side is still at least ``long_side`` (PIL ``draft``,
    :func:`monai_skinattr.data.checks.draft`): a 6642 x 4420 ISIC original is read as 1661 x 1105 in a fraction of
    the time and memory. The photo's original ``(H, W)``, as displayed, is recorded as the transform's
    ``orig_size``, so :meth:`inverse` (and MONAI's ``Invertd``) resizes a prediction ``(C, h, w)`` back to the
    photo's own size, all channels in one bilinear resize. With ``size`` the decoded photo is then resized to
    ``size`` with antialiasing (``torch.nn.functional.interpolate(..., antialias=True)``: a bilinear filter widened
    by the reduction, as PIL's resize), and :meth:`inverse` still resizes straight back to the original.

    .. code-block:: python

        load = LoadPhoto(long_side=1024)
        img = load("ISIC_0014746.jpg")  # a 6642 x 4420 JPEG
        print(img.shape, img.applied_operations[-1]["orig_size"])  # torch.Size([1105, 1661, 3]) (4420, 6642)
        pred = MetaTensor(torch.rand(8, 1105, 1661), applied_operations=img.applied_operations)
        print(load.inverse(pred).shape)  # torch.Size([8, 4420, 6642])
        print(LoadPhoto(long_side=1024, size=(768, 1024))("ISIC_0014746.jpg").shape)  # torch.Size([768, 1024, 3])

    Args:
        long_side: the smallest long side, in pixels, a JPEG is decoded at; 0 decodes every photo at full size
            (the inverse is then the identity). Other formats are always read at full size.
        mode: interpolation of :meth:`inverse` (``"bilinear"`` for probabilities, ``"nearest"`` for labels;
            ``Invertd(nearest_interp=True)`` switches it to nearest).
        size: ``(H, W)`` the decoded photo is resized to (antialiased bilinear); ``None`` keeps the decoded size.
    """

    def __init__(self, long_side: int = 0, mode: str = "bilinear", size: Sequence[int] | None = None) -> None:
        self.long_side = int(long_side)
        self.mode = mode
        self.size = None if size is None else tuple(check_size(s, "LoadPhoto size", 1) for s in size)
        if self.size is not None and len(self.size) != 2:
            raise ValueError(f"LoadPhoto size must be (H, W), got {size!r}.")
        before = partial(draft, long_side=self.long_side) if self.long_side else None
        self.reader = photo_reader(before=before)
        self.loader = LoadImage(reader=self.reader, image_only=True)

    def __call__(self, filename: PathLike) -> MetaTensor:
        with Image.open(filename) as im:  # the header only
            size = displayed_size(im)
        img = self.loader(filename, reader=self.reader)  # no fallback to other readers (LoadWithReaderd)
        if self.size is not None and tuple(img.shape[:2]) != self.size:
            img = self._resized(img)
        align = None if self.mode == "nearest" else False
        self.push_transform(img, orig_size=size, extra_info={"mode": self.mode, "align_corners": align})
        return img

    def _resized(self, img: MetaTensor) -> MetaTensor:
        """The ``(H, W[, C])`` photo resized to ``size``, antialiased."""
        channels = img.as_tensor().float().reshape(*img.shape[:2], -1).permute(2, 0, 1)[None]
        out = F.interpolate(channels, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        out = out[0].permute(1, 2, 0).reshape(*self.size, *img.shape[2:])
        return MetaTensor(out.contiguous(), meta=img.meta)

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """``data`` ``(C, h, w)`` resized to the photo's original ``(H, W)`` (unchanged when it is that size)."""
        transform = self.pop_transform(data)
        size = tuple(transform[TraceKeys.ORIG_SIZE])
        if tuple(data.shape[1:]) == size:
            return data
        info = transform[TraceKeys.EXTRA_INFO]
        align = None if info["align_corners"] == TraceKeys.NONE else info["align_corners"]
        resize = Resize(spatial_size=size, mode=info["mode"], align_corners=align)
        with resize.trace_transform(False):
            return resize(data)


class LoadPhotod(MapTransform, InvertibleTransform):
    """
    Dictionary twin of :class:`LoadPhoto`: load the photo path under each of ``keys``, JPEGs decoded at a reduced
    scale no shorter than ``long_side`` on their long side (then resized to ``size`` if given); its ``inverse``
    (``Invertd``) resizes them back.

    .. code-block:: python

        pre = Compose([LoadPhotod("image", long_side=1024), EnsureChannelFirstd("image")])
        post = Invertd("pred", transform=pre, orig_keys="image")  # pred back at the photo's original size
    """

    def __init__(
        self,
        keys: KeysCollection,
        long_side: int = 0,
        mode: str = "bilinear",
        size: Sequence[int] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadPhoto(long_side, mode, size)

    def __call__(self, data: Mapping[Hashable, PathLike]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader.inverse(d[key])
        return d


LoadPhotoD = LoadPhotoDict = LoadPhotod


def image_id(data: Mapping) -> str:
    """The item's ``id``, else the stem of its image file (``meta["filename_or_obj"]``)."""
    if "id" in data:
        return str(data["id"])
    meta = getattr(data.get("image"), "meta", {}) or {}
    return Path(str(meta.get("filename_or_obj", "image"))).stem


def mask8(prob: torch.Tensor, threshold: float) -> np.ndarray:
    """A probability (or 0/1) map as a 0/255 uint8 mask."""
    return (prob.detach().cpu().numpy() >= threshold).astype(np.uint8) * 255


def save_mask(mask: np.ndarray, path: str | Path) -> None:
    """
    Write an ``(H, W)`` 0/255 uint8 mask as a greyscale PNG at ``path``, atomically (creating its folder). Deflate's
    run-length strategy (``zlib.Z_RLE``) suits masks: a textured 6642 x 4420 mask is written in about 60 % of the
    time PIL's default settings take, and is smaller.

    .. code-block:: python

        save_mask(mask8(prob, 0.5), "out/ISIC_0000001_segmentation.png")
    """
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG", compress_type=zlib.Z_RLE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(buffer.getvalue(), path)


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
            save_mask(mask8(d[key][0], self.threshold), self.output_dir / f"{image_id(d)}{self.suffix}")
        return d
