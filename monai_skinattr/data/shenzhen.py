"""Shenzhen chest X-ray set with lung masks, in its common public layout (NLM images + the manual lung masks).

.. code-block:: python

    from monai_skinattr.data.shenzhen import shenzhen_datalist

    data = shenzhen_datalist("/data/shenzhen")  # 566 entries: the images that have a lung mask
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .checks import Problems, check_2d_pairs, check_not_partial

__all__ = ["IMAGES", "MASKS", "shenzhen_datalist"]

logger = logging.getLogger(__name__)

#: image folder (``CHNCXR_0001_0.png``: patient number, then 0 normal / 1 tuberculosis).
IMAGES = "CXR_png"
#: lung mask folders the releases use (``CHNCXR_0001_0_mask.png``); the first one present is read.
MASKS = ("mask", "masks")

_IMAGE = re.compile(r"^(CHNCXR_\d{4}_[01])\.png$", re.IGNORECASE)
_MASK = re.compile(r"^(CHNCXR_\d{4}_[01])_mask\.png$", re.IGNORECASE)


def shenzhen_datalist(root: str | Path, missing: str = "skip", validate: bool = True) -> list[dict]:
    """
    Datalist ``[{"image", "label", "id"}]`` of the Shenzhen chest X-rays with a lung mask (both lungs in one
    binary mask), sorted by id (e.g. ``"CHNCXR_0001_0"``; the last digit is 1 for tuberculosis). There is no
    official split: hold out a test set with :func:`monai_skinattr.data.carve_validation` or use
    :func:`monai_skinattr.data.kfold`.

    The public mask release covers 566 of the 662 images, so images without a mask are left out by default and
    their count is logged. Files other than ``CHNCXR_*`` (e.g. the Montgomery ``MCUCXR_*`` images that some
    releases put in the same folders) are ignored.

    Args:
        root: the folder holding ``CXR_png/`` and ``mask/`` (or ``masks/``).
        missing: ``"skip"`` (default) leaves out images without a mask; ``"error"`` reports each of them.
        validate: decode every file and check mask sizes and values.

    Raises:
        FileNotFoundError: ``root``, its image folder or its mask folder does not exist.
        DatasetLayoutError: no images, masks without an image, unreadable files, mask size mismatch, non-binary
            masks, images without a mask (with ``missing="error"``), or an interrupted synthetic generation.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got '{missing}'.")
    root = Path(root)
    check_not_partial(root, "shenzhen", "training")
    image_dir = root / IMAGES
    mask_dir = next((root / name for name in MASKS if (root / name).is_dir()), root / MASKS[0])
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"missing Shenzhen folder '{folder}' (expected {IMAGES}/ and {MASKS[0]}/).")
    problems = Problems()
    images = {
        m.group(1): image_dir / m.group(0) for m in map(_IMAGE.match, sorted(p.name for p in image_dir.iterdir())) if m
    }
    masks = {
        m.group(1): mask_dir / m.group(0) for m in map(_MASK.match, sorted(p.name for p in mask_dir.iterdir())) if m
    }
    if not images:
        problems.append(f"{image_dir}: no CHNCXR_NNNN_N.png images")
    entries = []
    for image_id, path in images.items():
        if image_id in masks:
            entries.append({"image": str(path), "label": str(masks[image_id]), "id": image_id})
        elif missing == "error":
            problems.append(f"{path.name}: no lung mask {image_id}_mask.png in {mask_dir}")
    problems.extend(f"{masks[i]}: mask without a matching image" for i in sorted(set(masks) - set(images)))
    if validate:
        check_2d_pairs(entries, "image", ["label"], problems, desc="checking Shenzhen")
    problems.raise_if_any(root)
    if len(entries) < len(images):
        logger.info(
            "Shenzhen: %d of %d images have no lung mask and are left out.", len(images) - len(entries), len(images)
        )
    return entries
