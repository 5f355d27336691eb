"""IDRiD "A. Segmentation" layout: fundus photographs with per-lesion-type masks.

.. code-block:: python

    from monai_skinattr.data.idrid import idrid_datalist

    train = idrid_datalist("/data/IDRiD", lesion="MA", split="training")
"""

from __future__ import annotations

import re
from pathlib import Path

from .checks import Problems, check_2d_pairs, check_not_partial

__all__ = ["LESIONS", "SPLITS", "idrid_datalist", "segmentation_root"]

#: lesion code -> ground-truth sub-folder (the codes are the mask file suffixes, e.g. ``IDRiD_01_MA.tif``).
LESIONS = {
    "MA": "1. Microaneurysms",
    "HE": "2. Haemorrhages",
    "EX": "3. Hard Exudates",
    "SE": "4. Soft Exudates",
    "OD": "5. Optic Disc",
}
#: split -> folder name used under both "1. Original Images" and "2. All Segmentation Groundtruths".
SPLITS = {"training": "a. Training Set", "testing": "b. Testing Set"}
IMAGES = "1. Original Images"
GROUNDTRUTHS = "2. All Segmentation Groundtruths"

_ID = re.compile(r"^(IDRiD_\d{2,3})\.jpg$", re.IGNORECASE)


def segmentation_root(root: str | Path) -> Path:
    """The ``A. Segmentation`` folder, given it or its parent."""
    root = Path(root)
    return root / "A. Segmentation" if (root / "A. Segmentation").is_dir() else root


def idrid_datalist(
    root: str | Path, lesion: str = "MA", split: str = "training", missing: str = "error", validate: bool = True
) -> list[dict]:
    """
    Datalist ``[{"image", "label", "id"}]`` of one IDRiD lesion type, sorted by image id.

    Args:
        root: the ``A. Segmentation`` folder or the folder holding it.
        lesion: one of ``LESIONS`` (``"MA"`` microaneurysms by default).
        split: ``"training"`` or ``"testing"``.
        missing: ``"error"`` reports images without a mask of this lesion type; ``"skip"`` leaves them out
            (IDRiD has soft-exudate masks for only some images).
        validate: decode every file and check mask sizes and values.

    Raises:
        DatasetLayoutError: missing or extra files, unreadable files, mask size mismatch, non-binary masks, or an
            interrupted synthetic generation.
    """
    if lesion not in LESIONS:
        raise ValueError(f"lesion must be one of {list(LESIONS)}, got '{lesion}'.")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got '{split}'.")
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got '{missing}'.")
    seg = segmentation_root(root)
    for folder in dict.fromkeys((Path(root), seg, seg.parent if seg.name == "A. Segmentation" else seg)):
        check_not_partial(folder, "idrid", split)
    image_dir = seg / IMAGES / SPLITS[split]
    mask_dir = seg / GROUNDTRUTHS / SPLITS[split] / LESIONS[lesion]
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"missing IDRiD folder '{folder}'.")
    problems = Problems()
    images = {
        m.group(1): image_dir / m.group(0) for m in map(_ID.match, sorted(p.name for p in image_dir.iterdir())) if m
    }
    suffix = re.compile(rf"^(IDRiD_\d{{2,3}})_{lesion}\.tif$", re.IGNORECASE)
    masks = {
        m.group(1): mask_dir / m.group(0) for m in map(suffix.match, sorted(p.name for p in mask_dir.iterdir())) if m
    }
    if not images:
        problems.append(f"{image_dir}: no IDRiD_NN.jpg images")
    entries = []
    for image_id, path in images.items():
        if image_id in masks:
            entries.append({"image": str(path), "label": str(masks[image_id]), "id": image_id})
        elif missing == "error":
            problems.append(f"{path.name}: no {lesion} mask in {mask_dir}")
    problems.extend(f"{masks[i]}: mask without a matching image" for i in sorted(set(masks) - set(images)))
    if validate:
        check_2d_pairs(entries, "image", ["label"], problems, desc=f"checking IDRiD {split}")
    problems.raise_if_any(seg)
    return entries
