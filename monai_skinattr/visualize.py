"""Overlays and contact sheets: what a person looks at to judge a dataset or a prediction.

.. code-block:: python

    from monai_skinattr.visualize import dataset_contact_sheet

    dataset_contact_sheet("isic", "data/isic_synthetic", "isic_sheet.png")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .data.checks import read_2d
from .data.io import save_image_atomic

__all__ = ["COLORS", "overlay", "contact_sheet", "dataset_contact_sheet"]

#: colour per mask name (ISIC attributes first; other names cycle through the palette).
COLORS = {
    "lesion": (255, 255, 255),
    "globules": (255, 60, 60),
    "milia_like_cyst": (255, 230, 0),
    "negative_network": (0, 200, 255),
    "pigment_network": (60, 255, 60),
    "streaks": (255, 0, 255),
    "label": (0, 255, 255),
}
_PALETTE = [(255, 60, 60), (60, 255, 60), (0, 200, 255), (255, 230, 0), (255, 0, 255), (255, 140, 0)]


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) of any range -> (H, W, 3) uint8."""
    src = np.asarray(image)
    img = src.astype(np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if src.dtype != np.uint8:
        lo, hi = np.percentile(img, (0.5, 99.5))
        img = (img - lo) / max(hi - lo, 1e-6) * 255
    return np.clip(img, 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, masks: dict[str, np.ndarray], alpha: float = 0.45, outline: bool = True) -> np.ndarray:
    """
    Blend coloured ``masks`` (name -> (H, W) binary) over ``image``; ``outline`` also draws each mask's border
    at full colour so thin structures stay visible. Returns (H, W, 3) uint8.
    """
    out = _rgb(image).astype(np.float32)
    for i, (name, mask) in enumerate(masks.items()):
        m = np.asarray(mask) > 0
        if m.ndim == 3:
            m = m.any(axis=-1)
        color = np.asarray(COLORS.get(name, _PALETTE[i % len(_PALETTE)]), np.float32)
        out[m] = out[m] * (1 - alpha) + color * alpha
        if outline:
            inner = np.zeros_like(m)
            inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
            out[m & ~inner] = color
    return out.astype(np.uint8)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str] = (), tile: int = 160) -> np.ndarray:
    """Grid of images (each row a sequence of (H, W[, 3]) arrays), each resized to ``tile`` pixels high."""
    resized = []
    for row in rows:
        cells = []
        for img in row:
            pil = Image.fromarray(_rgb(img))
            width = max(1, round(pil.width * tile / pil.height))
            cells.append(np.asarray(pil.resize((width, tile), Image.NEAREST)))
        resized.append(cells)
    width = max(sum(c.shape[1] + 4 for c in row) for row in resized)
    header = 18 if titles else 0
    sheet = np.full((header + len(resized) * (tile + 4), width, 3), 32, np.uint8)
    for r, row in enumerate(resized):
        x = 0
        for cell in row:
            y = header + r * (tile + 4)
            sheet[y : y + tile, x : x + cell.shape[1]] = cell
            x += cell.shape[1] + 4
    if titles:
        pil = Image.fromarray(sheet)
        draw = ImageDraw.Draw(pil)
        col_w = resized[0][0].shape[1] + 4
        for i, title in enumerate(titles):
            draw.text((i * col_w + 3, 3), title, fill=(230, 230, 230))
        sheet = np.asarray(pil)
    return sheet


def _isic_rows(root: str | Path, split: str, n: int) -> tuple[list[list[np.ndarray]], list[str]]:
    """Rows of image / lesion / attributes, preferring images that show the rarer attributes."""
    from .data.isic import isic_datalist

    samples = []
    for e in isic_datalist(root, task=2, split=split, validate=False):
        attrs = {k: read_2d(e[k]) for k in e if k not in ("image", "id", "lesion")}
        samples.append((e, {k: m for k, m in attrs.items() if m.any()}))
    counts = Counter(k for _, present in samples for k in present)
    samples.sort(key=lambda s: -sum(1 / counts[k] for k in s[1]))
    rows = []
    for e, present in samples[:n]:
        image = read_2d(e["image"])
        lesion = overlay(image, {"lesion": read_2d(e["lesion"])}, alpha=0.1)
        rows.append([image, lesion, overlay(image, present, outline=False)])
    return rows, ["image", "lesion (Task 1)", "attributes (Task 2)"]


def _pair_rows(data: list[dict], grow: int = 0) -> list[list[np.ndarray]]:
    """Image and image + ``label`` overlay per entry; ``grow`` dilates tiny lesions so they stay visible."""
    rows = []
    for e in data:
        image, mask = read_2d(e["image"]), read_2d(e["label"]) > 0
        if grow:
            mask = ndimage.binary_dilation(mask, iterations=grow)
        rows.append([image, overlay(image, {"label": mask})])
    return rows


def _acdc_rows(root: str | Path, split: str, n: int) -> tuple[list[list[np.ndarray]], list[str]]:
    from .data.acdc import acdc_datalist

    rows = []
    for e in acdc_datalist(root, split=split, validate=False)[:n]:
        vol = np.asarray(nib.load(e["image"]).dataobj)
        lab = np.asarray(nib.load(e["label"]).dataobj)
        z = vol.shape[-1] // 3
        masks = {name: lab[..., z] == value for value, name in ((1, "RV"), (2, "MYO"), (3, "LV"))}
        rows.append([vol[..., z], overlay(vol[..., z], masks)])
    return rows, ["MR slice (ED/ES)", "RV / MYO / LV"]


def dataset_contact_sheet(
    dataset: str, root: str | Path, path: str | Path, split: str | None = None, n: int = 6, tile: int = 160
) -> Path:
    """Write a PNG of ``n`` samples of a dataset folder (any of the readers' layouts) with their masks overlaid."""
    from .data.covidqu import covidqu_datalist
    from .data.idrid import idrid_datalist

    if dataset == "isic":
        rows, titles = _isic_rows(root, split or "training", n)
    elif dataset == "acdc":
        rows, titles = _acdc_rows(root, split or "training", n)
    elif dataset == "idrid":
        data = idrid_datalist(root, split=split or "training", validate=False)[:n]
        rows, titles = _pair_rows(data, grow=2), ["fundus", "microaneurysms (marks enlarged)"]
    elif dataset == "covidqu":
        data = covidqu_datalist(root, split=split or "train", validate=False)[:n]
        rows = [
            r + [overlay(read_2d(e["image"]), {"lung": read_2d(e["lung"])})]
            for r, e in zip(_pair_rows(data), data, strict=True)
        ]
        titles = ["radiograph", "infection", "lungs"]
    else:
        raise ValueError(f"unknown dataset '{dataset}'; use isic, acdc, idrid or covidqu.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(contact_sheet(rows, titles, tile), path)
    return path
