"""Contact sheets of the dataset layouts the readers know: samples with their masks overlaid, and a legend.

.. code-block:: python

    from monai_skinattr.data.contact_sheets import dataset_contact_sheet

    dataset_contact_sheet("isic", "data/isic_synthetic", "isic_sheet.png")
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..utils.io import save_image_atomic
from ..visualize import contact_sheet, legend, overlay
from .acdc import acdc_datalist
from .covidqu import covidqu_datalist
from .cvc import cvc_colondb_datalist
from .idrid import idrid_datalist
from .images import read_mask, read_photo
from .isic import COLORS as ISIC_COLORS
from .isic import isic_datalist
from .shenzhen import shenzhen_datalist

__all__ = ["COLORS", "dataset_contact_sheet"]

#: colour per mask name shown on the sheets (ISIC lesion and attributes, ACDC structures, IDRiD / COVID-QU-Ex masks).
COLORS = {
    **ISIC_COLORS,
    "RV": (255, 60, 60),
    "MYO": (60, 255, 60),
    "LV": (0, 200, 255),
    "microaneurysms": (0, 255, 255),
    "infection": (0, 255, 255),
    "lung": (255, 60, 60),
    "polyp": (0, 255, 120),
}
Rows = list[list[np.ndarray]]


def _isic_rows(root: str | Path, split: str, n: int) -> tuple[Rows, list[str], list[str]]:
    """Rows of image / lesion / attributes, preferring images that show the rarer attributes."""
    samples = []
    for e in isic_datalist(root, task=2, split=split, validate=False):
        attrs = {k: read_mask(e[k]) for k in e if k not in ("image", "id", "lesion")}
        samples.append((e, {k: m for k, m in attrs.items() if m.any()}))
    counts = Counter(k for _, present in samples for k in present)
    samples.sort(key=lambda s: -sum(1 / counts[k] for k in s[1]))
    rows = []
    for e, present in samples[:n]:
        image = read_photo(e["image"])
        lesion = overlay(image, {"lesion": read_mask(e["lesion"])}, COLORS, alpha=0.1)
        rows.append([image, lesion, overlay(image, present, COLORS, outline=False)])
    names = ["lesion", *(k for k in samples[0][0] if k not in ("image", "id", "lesion"))] if samples else []
    return rows, ["image", "lesion (Task 1)", "attributes (Task 2)"], names


def _pair_rows(data: list[dict], name: str, grow: int = 0) -> Rows:
    """Image and image + ``label`` overlay (shown as ``name``) per entry; ``grow`` dilates tiny lesions."""
    rows = []
    for e in data:
        image, mask = read_photo(e["image"]), read_mask(e["label"])
        if grow:
            mask = ndimage.binary_dilation(mask, iterations=grow)
        rows.append([image, overlay(image, {name: mask}, COLORS)])
    return rows


def _acdc_rows(root: str | Path, split: str, n: int) -> tuple[Rows, list[str], list[str]]:
    rows = []
    for e in acdc_datalist(root, split=split, validate=False)[:n]:
        vol = np.asarray(nib.load(e["image"]).dataobj)
        lab = np.asarray(nib.load(e["label"]).dataobj)
        z = vol.shape[-1] // 3
        masks = {name: lab[..., z] == value for value, name in ((1, "RV"), (2, "MYO"), (3, "LV"))}
        rows.append([vol[..., z], overlay(vol[..., z], masks, COLORS)])
    return rows, ["MR slice (ED/ES)", "RV / MYO / LV"], ["RV", "MYO", "LV"]


def dataset_contact_sheet(
    dataset: str, root: str | Path, path: str | Path, split: str | None = None, n: int = 6, tile: int = 160
) -> Path:
    """
    Write a PNG of ``n`` samples of a dataset folder (``"isic"``, ``"acdc"``, ``"idrid"``, ``"covidqu"``,
    ``"shenzhen"`` or ``"cvc_colondb"``, in the readers' layouts) with their masks overlaid and a legend of the
    colours below. Returns ``path``.

    .. code-block:: python

        dataset_contact_sheet("acdc", "data/acdc_synthetic", "acdc_sheet.png", n=4)
    """
    if dataset == "isic":
        rows, titles, names = _isic_rows(root, split or "training", n)
    elif dataset == "acdc":
        rows, titles, names = _acdc_rows(root, split or "training", n)
    elif dataset == "idrid":
        data = idrid_datalist(root, split=split or "training", validate=False)[:n]
        rows, titles = _pair_rows(data, "microaneurysms", grow=2), ["fundus", "microaneurysms (marks enlarged)"]
        names = ["microaneurysms"]
    elif dataset == "covidqu":
        data = covidqu_datalist(root, split=split or "train", validate=False)[:n]
        rows = [
            r + [overlay(read_photo(e["image"]), {"lung": read_mask(e["lung"])}, COLORS)]
            for r, e in zip(_pair_rows(data, "infection"), data, strict=True)
        ]
        titles, names = ["radiograph", "infection", "lungs"], ["infection", "lung"]
    elif dataset == "shenzhen":
        rows, titles, names = (
            _pair_rows(shenzhen_datalist(root, validate=False)[:n], "lung"),
            ["radiograph", "lungs"],
            ["lung"],
        )
    elif dataset == "cvc_colondb":
        data = cvc_colondb_datalist(root, validate=False)[:n]
        rows, titles, names = _pair_rows(data, "polyp"), ["colonoscopy frame", "polyp"], ["polyp"]
    else:
        raise ValueError(f"unknown dataset '{dataset}'; use isic, acdc, idrid, covidqu, shenzhen or cvc_colondb.")
    if not rows:
        raise ValueError(f"no samples to show in '{root}' ({dataset}, split {split or 'default'}).")
    sheet = contact_sheet(rows, titles, tile)
    sheet = np.concatenate([sheet, legend({name: COLORS[name] for name in names}, sheet.shape[1])], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(sheet, path)
    return path
