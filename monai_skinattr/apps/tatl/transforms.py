"""The transform definitions TATL's training and inference configs share, and the writers of its masks."""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import EnsureChannelFirstd, MapTransform, Resized, ScaleIntensityRanged, Transform
from monai.utils import ensure_tuple
from PIL import Image

from monai_skinattr.config import as_size
from monai_skinattr.data.checks import DatasetLayoutError, draft
from monai_skinattr.data.images import photo_image, read_mask
from monai_skinattr.data.isic import COLORS
from monai_skinattr.transforms import LesionBBoxCropd, read_photo_and_masks
from monai_skinattr.transforms.io import LoadPhotod, mask8, save_mask
from monai_skinattr.transforms.io import image_id as _image_id
from monai_skinattr.utils.io import file_sha256, remove_partials, save_image_atomic, write_text_atomic
from monai_skinattr.visualize import comparison_panel

logger = logging.getLogger(__name__)

__all__ = [
    "load_transforms",
    "lesion_crop",
    "with_lesions",
    "SaveCascadeMasksd",
    "cascade_outputs",
    "pending_images",
]

#: what a cascade run over a folder records in its output folder: the checkpoint's digest and the settings
RUN_RECORD = "cascade_run.json"


def load_transforms(keys: KeysCollection, photo_size: Sequence[int] | None = None) -> list[Transform]:
    """
    TATL's one photo sampling: how training, stage-1 prediction and the cascade all read a photo (key ``"image"``)
    and its masks (the other ``keys``, any binary encoding), channel first, 0..255 -> 0..1. With ``photo_size``
    ``(H, W)`` a JPEG is decoded at the smallest JPEG scale whose long side is still at least ``max(photo_size)``
    (PIL ``draft``), then resized to ``photo_size`` with antialiasing
    (:class:`~monai_skinattr.transforms.io.LoadPhotod`; ``Invertd`` gives predictions back at the photo's original
    size in one resize); masks are resized to ``photo_size`` by nearest neighbour. Every later step (the Segment-Net
    grid, the lesion crops) samples this one photo the same way in training and in the cascade. Without
    ``photo_size`` the files are read at their own size.

    .. code-block:: python

        pre = Compose(load_transforms(["image", "streaks"], photo_size=[768, 1024]))
        print(pre({"image": "ISIC_0014746.jpg", "streaks": "ISIC_0014746_attribute_streaks.png"})["image"].shape)
        # a 6642 x 4420 JPEG, decoded at 1661 x 1105, resized: (3, 768, 1024)
    """
    keys = ensure_tuple(keys)
    masks = [k for k in keys if k != "image"]
    if photo_size is None:
        load, resize = read_photo_and_masks([k for k in keys if k == "image"], masks), []
    else:
        size = as_size(list(ensure_tuple(photo_size)), "photo_size")
        photo = [LoadPhotod("image", long_side=max(size), size=size)] if "image" in keys else []
        load = [*photo, *read_photo_and_masks((), masks)]
        resize = [Resized(masks, spatial_size=size, mode="nearest")] if masks else []
    return [
        *load,
        EnsureChannelFirstd(keys),
        ScaleIntensityRanged(keys, a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
        *resize,
    ]


def lesion_crop(keys: Sequence[str], lesion_size: Sequence[int], offset: int) -> list[Transform]:
    """
    How stages 2 and 3 cut the lesion region: the lesion mask resized (nearest) to the Segment-Net grid
    ``lesion_size``, then ``image`` and ``keys`` cropped to its bounding box grown by ``offset`` pixels of that grid
    (:class:`~monai_skinattr.transforms.LesionBBoxCropd`; the cascade cuts the same box).

    .. code-block:: python

        crop = Compose(lesion_crop(["streaks"], lesion_size=[384, 512], offset=40))
    """
    return [
        Resized(keys="lesion", spatial_size=lesion_size, mode="nearest"),
        LesionBBoxCropd(keys=["image", *keys], mask_key="lesion", offset=offset),
    ]


def with_lesions(datalist: Sequence[dict], lesion_dir: str | Path, key: str = "lesion") -> list[dict]:
    """
    ``datalist`` with ``key`` pointing at the stage-1 predicted ``<id>_segmentation.png`` in ``lesion_dir``
    (an empty ``lesion_dir`` keeps the ground truth). Every missing prediction is named in one error.
    """
    if not lesion_dir:
        return list(datalist)
    lesion_dir = Path(lesion_dir)
    out = [{**e, key: str(lesion_dir / f"{e['id']}_segmentation.png")} for e in datalist]
    missing = [f"{e[key]}: no predicted lesion (run configs/predict_lesion.json first)" for e in out]
    missing = [m for m, e in zip(missing, out, strict=True) if not Path(e[key]).is_file()]
    if missing:
        raise DatasetLayoutError(lesion_dir, missing)
    return out


def cascade_outputs(output_dir: str | Path, image_id: str, channels: Sequence[str]) -> dict[str, Path]:
    """
    The files :class:`SaveCascadeMasksd` writes for one image: one mask per channel but ``background``
    (``attributes/<id>_attribute_<name>.png``, ``lesion/<id>_segmentation.png``, ``union/<id>_union.png``) and
    ``"overlay"`` (``overlays/<id>_overlay.png``).

    .. code-block:: python

        cascade_outputs("out", "ISIC_0000000", ["background", "lesion", "union", "streaks"])["streaks"]
        # PosixPath('out/attributes/ISIC_0000000_attribute_streaks.png')
    """
    out = Path(output_dir)
    fixed = {"lesion": f"lesion/{image_id}_segmentation.png", "union": f"union/{image_id}_union.png"}
    paths = {n: out / fixed.get(n, f"attributes/{image_id}_attribute_{n}.png") for n in channels if n != "background"}
    return {**paths, "overlay": out / "overlays" / f"{image_id}_overlay.png"}


def pending_images(
    datalist: Sequence[dict],
    output_dir: str | Path,
    channels: Sequence[str],
    checkpoint: str | Path,
    settings: Mapping | None = None,
    resume: bool = True,
) -> list[dict]:
    """
    The items of ``datalist`` a cascade run still has to segment into ``output_dir``. With ``resume``, an image
    whose files (:func:`cascade_outputs`) are all there is skipped — each was written atomically, so it is complete
    — provided the earlier run used the same ``checkpoint`` (its SHA-256) and ``settings`` (threshold, inference
    size...), which ``output_dir/cascade_run.json`` records; otherwise every image is segmented again. Temporary
    files an interrupted write left are deleted.

    .. code-block:: python

        todo = pending_images(image_datalist("photos"), "out", net.channels, "models/model.pt", {"threshold": 0.5})

    Returns:
        the pending items, in ``datalist`` order.
    """
    out = Path(output_dir)
    record = {"checkpoint": file_sha256(checkpoint), **dict(settings or {})}
    record_path = out / RUN_RECORD
    same_run = record_path.is_file() and json.loads(record_path.read_text()) == json.loads(json.dumps(record))
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(record, indent=2), record_path)
    remove_partials(out)
    if not (resume and same_run):
        return list(datalist)
    todo = [e for e in datalist if not all(p.is_file() for p in cascade_outputs(out, _image_id(e), channels).values())]
    if len(todo) < len(datalist):
        logger.info("resuming: %d of %d images already segmented in %s", len(datalist) - len(todo), len(datalist), out)
    return todo


class SaveCascadeMasksd(MapTransform):
    """
    Write the cascade's maps of one image at its original size, ISIC style: ``attributes/<id>_attribute_<name>.png``
    (accepted by the official scorer), ``lesion/<id>_segmentation.png``, ``union/<id>_union.png``, and an overlay
    ``overlays/<id>_overlay.png`` (photo | ground truth when ``with_truth`` and the item holds the attribute mask
    paths | prediction, with a colour legend). The overlay of a photo longer than ``overlay_size`` is drawn with its
    long side at ``overlay_size`` pixels (the masks shrunk by nearest neighbour): a person sees a 6642 x 4420
    original as well at 1024 x 681, and two panels of 29 megapixels take seconds to draw and write.

    .. code-block:: python

        SaveCascadeMasksd("pred", "out", net.channels)({"pred": probs, "image": photo, "id": "ISIC_0000001"})

    Args:
        keys: the prediction key, ``(len(channels), H, W)`` probabilities at the original size.
        output_dir: root of the four folders.
        channels: name of each channel (``TATLCascadeNet.channels``); ``background`` is not written.
        threshold: probability threshold of every mask.
        with_truth: show the ground truth beside the prediction in the overlay.
        overlay_size: longest side of the overlay's panels, in pixels; 0 draws them at the photo's size.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | Path,
        channels: Sequence[str],
        threshold: float = 0.5,
        with_truth: bool = False,
        overlay_size: int = 1024,
    ) -> None:
        super().__init__(keys)
        self.output_dir = Path(output_dir)
        self.channels = list(channels)
        self.threshold = threshold
        self.with_truth = with_truth
        self.overlay_size = int(overlay_size)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        image_id = _image_id(d)
        for key in self.key_iterator(d):
            pred = d[key]
            if pred.shape[0] != len(self.channels):
                raise ValueError(f"'{key}' has {pred.shape[0]} channels, expected {len(self.channels)}.")
            masks = {n: mask8(pred[c], self.threshold) for c, n in enumerate(self.channels) if n != "background"}
            paths = cascade_outputs(self.output_dir, image_id, self.channels)
            for name, mask in masks.items():
                save_mask(mask, paths[name])
            self._overlay(d, paths["overlay"], masks)
        return d

    def _overlay(self, d: Mapping, path: Path, masks: Mapping[str, np.ndarray]) -> None:
        meta = getattr(d.get("image"), "meta", {}) or {}
        source = meta.get("filename_or_obj")
        if not source:
            return
        height, width = next(iter(masks.values())).shape
        scale = min(1.0, self.overlay_size / max(height, width)) if self.overlay_size else 1.0
        size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL's (width, height)
        with Image.open(source) as im:
            upright = photo_image(draft(im, max(size)) if scale < 1 else im)
            photo = np.asarray(upright.resize(size, Image.BILINEAR) if scale < 1 else upright)

        def shrink(mask: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST)) if scale < 1 else mask

        shown = {n: shrink(m) for n, m in masks.items() if n != "union"}
        truth = None
        if self.with_truth:
            found = [n for n in shown if isinstance(d.get(n), str) and Path(d[n]).is_file()]
            truth = {n: shrink(read_mask(d[n]).astype(np.uint8) * 255) for n in found}
        colors = {n: COLORS[n] for n in shown if n in COLORS}
        panel = comparison_panel(photo, shown, truth or None, colors=colors)
        save_image_atomic(panel, path)
