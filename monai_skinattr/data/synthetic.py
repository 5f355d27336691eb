"""Synthetic twins of the challenge datasets, written in the same on-disk layouts as the real ones.

No dataset can be downloaded on the machines this project is built on, so every reader has a generator that writes
its exact folder and file layout (names, formats, NIfTI headers, ``Info.cfg``). The pictures are simple but
learnable: each target is a visible pattern, and masks are only where it is drawn. Deterministic for a seed.
Every file is written under a temporary name and renamed. A marker ``.synthetic-<dataset>-<split>.partial`` is
written before the first image and replaced by ``.synthetic-<dataset>-<split>.json`` after the last one, so
:func:`is_complete` and :func:`is_partial` tell a finished dataset from an interrupted one, and the readers refuse
an interrupted one.

.. code-block:: bash

    python -m monai_skinattr.data.synthetic isic --root data/isic_synthetic --n 40 --sheet isic_sheet.png
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.segmentation import slic
from tqdm import tqdm

from ..utils.io import save_image_atomic, save_nifti_atomic, write_text_atomic
from .acdc import LABELS as ACDC_LABELS
from .checks import partial_marker
from .covidqu import CLASSES as COVID_CLASSES
from .covidqu import SPLITS as COVID_SPLITS
from .cvc import FOLDER as CVC_FOLDER
from .idrid import GROUNDTRUTHS, IMAGES, LESIONS
from .idrid import SPLITS as IDRID_SPLITS
from .isic import ATTRIBUTES, LAYOUTS
from .shenzhen import IMAGES as SHENZHEN_IMAGES
from .shenzhen import MASKS as SHENZHEN_MASKS

__all__ = [
    "ISIC2018_FREQUENCIES",
    "make_isic",
    "make_acdc",
    "make_idrid",
    "make_covidqu",
    "make_shenzhen",
    "make_cvc_colondb",
    "make_imagefolder",
    "is_complete",
    "is_partial",
    "isic_sample",
]

#: per-image presence of each attribute in ISIC 2018 Task 2 training data (fraction of the 2594 images).
ISIC2018_FREQUENCIES = {
    "pigment_network": 0.587,
    "milia_like_cyst": 0.263,
    "globules": 0.232,
    "negative_network": 0.073,
    "streaks": 0.039,
}


# ----------------------------------------------------------------------------------------------- drawing helpers


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean noise of unit standard deviation, smoothed with a Gaussian of ``sigma`` pixels."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return noise / (noise.std() + 1e-8)


def _blob(
    rng: np.random.Generator, shape: tuple[int, int], center, radius: float, irregularity: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """Irregular star-shaped region: radius modulated by random harmonics. Returns (mask, normalised radius map)."""
    yy, xx = _grid(shape)
    dy, dx = yy - center[0], xx - center[1]
    theta = np.arctan2(dy, dx)
    r = np.full_like(theta, radius)
    for k in range(2, 7):
        r *= 1 + irregularity / k * rng.uniform(0.5, 1.5) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    rho = np.hypot(dy, dx) / r
    return rho < 1, rho


def _disks(shape: tuple[int, int], centers, radius: float) -> np.ndarray:
    yy, xx = _grid(shape)
    out = np.zeros(shape, bool)
    for cy, cx in centers:
        out |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    return out


def _paint(image: np.ndarray, where: np.ndarray, color, alpha: float | np.ndarray = 1.0) -> None:
    """Blend ``color`` into ``image`` (H, W, 3 float) where ``where`` holds, with opacity ``alpha``."""
    a = np.where(where, alpha, 0.0)[..., None]
    image[:] = image * (1 - a) + np.asarray(color, np.float32) * a


def _random_points(rng: np.random.Generator, region: np.ndarray, n: int) -> np.ndarray:
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return np.zeros((0, 2))
    pick = rng.choice(len(ys), size=min(n, len(ys)), replace=False)
    return np.stack([ys[pick], xs[pick]], axis=1)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _mask8(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8) * 255


# --------------------------------------------------------------------------------------------------------- ISIC


def _reticular_lines(rng: np.random.Generator, shape: tuple[int, int], period: float) -> np.ndarray:
    """A warped honeycomb-like lattice of thin lines (the pigment / negative network pattern)."""
    yy, xx = _grid(shape)
    warp = period * 0.35
    y = yy + warp * _smooth_noise(rng, shape, period)
    x = xx + warp * _smooth_noise(rng, shape, period)
    width = max(1.0, period * 0.18)
    near = lambda v: np.abs((v % period) - period / 2) > period / 2 - width / 2  # noqa: E731
    return near(y) | near(x)


def isic_sample(
    rng: np.random.Generator, size: tuple[int, int] = (192, 256), frequencies: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """
    One synthetic dermoscopy image: textured skin, an irregular pigmented lesion, and the ISIC attributes drawn
    as visible patterns in their own regions inside the lesion, each present with its ISIC 2018 frequency.

    Returns ``(image (H, W, 3) uint8, lesion mask (H, W) bool, {attribute: mask (H, W) bool})``; every attribute
    mask lies inside the lesion and is empty when the attribute is absent.
    """
    frequencies = ISIC2018_FREQUENCIES if frequencies is None else frequencies
    h, w = size
    short = min(h, w)
    skin = np.asarray([224, 178, 152], np.float32) * rng.uniform(0.9, 1.05, 3)
    image = np.empty((h, w, 3), np.float32)
    image[:] = skin
    image += 10 * _smooth_noise(rng, (h, w), short / 12)[..., None] + 3 * rng.standard_normal((h, w, 1))

    center = (h / 2 + rng.uniform(-0.08, 0.08) * h, w / 2 + rng.uniform(-0.08, 0.08) * w)
    radius = short * rng.uniform(0.27, 0.36)
    lesion, rho = _blob(rng, (h, w), center, radius, irregularity=0.25)
    brown = np.asarray([140, 92, 64], np.float32) * rng.uniform(0.8, 1.05)
    shade = np.clip(1 - 0.25 * (1 - rho), 0.7, 1) * (1 + 0.08 * _smooth_noise(rng, (h, w), short / 10))
    edge = ndimage.gaussian_filter(lesion.astype(np.float32), max(1.0, short / 150))[..., None]
    image = image * (1 - edge) + brown * shade[..., None] * edge

    inner = ndimage.binary_erosion(lesion, iterations=max(1, int(short / 40)))
    if not inner.any():
        inner = lesion
    masks = {}
    for name in ATTRIBUTES:
        present = rng.random() < frequencies.get(name, 0.0)
        masks[name] = _draw_attribute(rng, name, image, lesion, inner, rho, center, radius) if present else None
        if masks[name] is None or not masks[name].any():
            masks[name] = np.zeros((h, w), bool)
    return _to_uint8(image), lesion, masks


def _draw_attribute(rng, name, image, lesion, inner, rho, center, radius) -> np.ndarray:
    """Draw one attribute's pattern into ``image`` and return its mask (inside the lesion)."""
    h, w = lesion.shape
    short = min(h, w)
    sub_center = _random_points(rng, inner, 1)[0]
    region, _ = _blob(rng, (h, w), sub_center, radius * rng.uniform(0.45, 0.7), irregularity=0.2)
    region &= inner
    dark = np.asarray([62, 38, 28], np.float32)
    if name in ("pigment_network", "negative_network"):
        lines = _reticular_lines(rng, (h, w), period=max(4.0, short / 14)) & region
        color = dark if name == "pigment_network" else np.asarray([205, 170, 150], np.float32)
        _paint(image, lines, color, 0.85)
        return region
    if name in ("globules", "milia_like_cyst"):
        dot = max(1.5, short / (40 if name == "globules" else 55))
        centers = _random_points(rng, ndimage.binary_erosion(region, iterations=int(dot) + 1), int(rng.integers(4, 9)))
        dots = _disks((h, w), centers, dot)
        color = np.asarray([45, 28, 22], np.float32) if name == "globules" else np.asarray([245, 240, 215], np.float32)
        _paint(image, dots, color, 0.95)
        return _disks((h, w), centers, dot + 1) & lesion
    # streaks: radial dark lines in one sector of the lesion periphery
    yy, xx = _grid((h, w))
    theta = np.arctan2(yy - center[0], xx - center[1])
    start = rng.uniform(-np.pi, np.pi)
    sector = np.angle(np.exp(1j * (theta - start))) % (2 * np.pi) < rng.uniform(0.9, 1.6)
    rays = np.abs(np.sin(theta * rng.integers(28, 40) / 2)) < 0.22
    streaks = sector & rays & (rho > 0.6) & lesion
    _paint(image, streaks, dark, 0.9)
    return ndimage.binary_dilation(streaks, iterations=1) & lesion


def _isic_ids(split: str, n: int, start: int) -> list[str]:
    offset = {"training": 0, "validation": 100000, "test": 200000}[split]
    return [f"ISIC_{offset + start + i:07d}" for i in range(n)]


def make_isic(
    root: str | Path,
    n: int = 40,
    size: tuple[int, int] = (192, 256),
    seed: int = 0,
    year: int = 2018,
    split: str = "training",
    frequencies: dict[str, float] | None = None,
    progress: bool = True,
) -> Path:
    """
    Write ``n`` synthetic dermoscopy images with lesion and attribute masks in the ISIC ``year`` layout.

    2018: ``ISIC2018_Task1-2_<Split>_Input/ISIC_x.jpg``, ``ISIC2018_Task1_<Split>_GroundTruth/ISIC_x_segmentation.png``,
    ``ISIC2018_Task2_<Split>_GroundTruth/ISIC_x_attribute_<name>.png`` (training: ``..._GroundTruth_v3`` as
    released). 2017: images with ``ISIC_x_superpixels.png`` (SLIC) and Part 2 ``ISIC_x_features.json`` marking
    superpixels at least half covered by an attribute. 2016: Part 1 only, ``ISIC_x_Segmentation.png``.

    .. code-block:: python

        from monai_skinattr.data import isic_datalist, synthetic

        root = synthetic.make_isic("data/isic_synthetic", n=8, size=(64, 64))
        print(len(isic_datalist(root, task=2)))  # 8
    """
    if year not in LAYOUTS or split not in LAYOUTS[year]["splits"]:
        splits = {y: list(layout["splits"]) for y, layout in LAYOUTS.items()}
        raise ValueError(f"unknown ISIC year/split {year}/'{split}'; available: {splits}.")
    root = Path(root)
    layout = LAYOUTS[year]
    word = layout["splits"][split]
    params = {"n": n, "size": list(size), "seed": seed, "year": year}
    _mark_started(root, "isic", split, **params)
    images = root / layout["images"].format(split=word)
    task1 = root / layout["task1"].format(split=word)
    task2 = None
    if "task2" in layout:
        task2 = root / (layout["task2"].format(split=word) + ("_v3" if year == 2018 and split == "training" else ""))
    for folder in (images, task1, task2):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        "Synthetic images generated by monai_skinattr; no real patient data.\n", images / "ATTRIBUTION.txt"
    )
    rng_root = np.random.SeedSequence([seed, year, list(layout["splits"]).index(split)])
    for image_id, child in tqdm(
        list(zip(_isic_ids(split, n, 0), rng_root.spawn(n), strict=True)),
        desc=f"synthetic ISIC {year} {split}",
        disable=not progress,
    ):
        rng = np.random.default_rng(child)
        image, lesion, masks = isic_sample(rng, size, frequencies)
        save_image_atomic(image, images / f"{image_id}.jpg")
        save_image_atomic(_mask8(lesion), task1 / f"{image_id}{layout['task1_suffix']}")
        if year == 2018:
            for name, mask in masks.items():
                save_image_atomic(_mask8(mask), task2 / f"{image_id}_attribute_{name}.png")
        elif year == 2017:
            _write_superpixel_features(image, masks, layout["attributes"], images, task2, image_id)
    _mark_complete(root, "isic", split, **params)
    return root


def _write_superpixel_features(image, masks, attributes, image_dir: Path, features_dir: Path, image_id: str) -> None:
    """ISIC 2017 Part 2 encoding: superpixel index image + per-attribute 0/1 lists over superpixels."""
    segments = slic(image, n_segments=max(16, image.shape[0] * image.shape[1] // 64), start_label=0, compactness=10)
    count = int(segments.max()) + 1
    rgb = np.stack([segments & 255, (segments >> 8) & 255, (segments >> 16) & 255], axis=-1).astype(np.uint8)
    save_image_atomic(rgb, image_dir / f"{image_id}_superpixels.png")
    area = np.bincount(segments.ravel(), minlength=count)
    features = {}
    for name in attributes:
        covered = np.bincount(segments.ravel(), weights=masks[name].ravel().astype(float), minlength=count)
        features[name] = (covered >= 0.5 * area).astype(int).tolist()
    write_text_atomic(json.dumps(features), features_dir / f"{image_id}_features.json")


# --------------------------------------------------------------------------------------------------------- ACDC


def _heart_slice(rng, shape, center, z_frac, phase_scale, base_radius) -> np.ndarray:
    """Labels of one short-axis slice: LV cavity (3) inside myocardium (2), RV crescent (1) beside it."""
    taper = 1 - 0.6 * z_frac**1.5
    r_lv = base_radius * taper * phase_scale
    thick = base_radius * 0.45 * taper * (2 - phase_scale)
    lv, _ = _blob(rng, shape, center, r_lv, 0.05)
    myo, _ = _blob(rng, shape, center, r_lv + thick, 0.05)
    label = np.zeros(shape, np.uint8)
    if z_frac < 0.75:
        rv_center = (center[0] - 0.2 * r_lv, center[1] - (r_lv + thick) * 1.05)
        rv, _ = _blob(rng, shape, rv_center, (r_lv + thick) * 0.95, 0.08)
        label[rv & ~ndimage.binary_dilation(myo, iterations=1)] = 1
    label[myo] = 2
    label[lv] = 3
    return label


def _cardiac_image(rng, label: np.ndarray) -> np.ndarray:
    """MR-like intensities for a label volume: bright blood, dark myocardium, textured body, Rician-like noise."""
    h, w, d = label.shape
    body, _ = _blob(rng, (h, w), (h / 2, w / 2), min(h, w) * 0.46, 0.08)
    tissue = 320 + 60 * _smooth_noise(rng, (h, w, d), min(h, w) / 16)
    image = np.where(body[..., None], tissue, 0.0)
    image[label == 2] = 170
    image[(label == 1) | (label == 3)] = 720
    image = ndimage.gaussian_filter(image, (0.7, 0.7, 0))
    noise = 18 * rng.standard_normal((2, h, w, d))
    return np.hypot(image + noise[0], noise[1]).astype(np.int16)


def make_acdc(
    root: str | Path,
    n: int = 10,
    size: tuple[int, int, int] = (96, 96, 8),
    seed: int = 0,
    split: str = "training",
    n_frames: int = 10,
    progress: bool = True,
) -> Path:
    """
    Write ``n`` synthetic patients in the ACDC layout: ``<root>/<split>/patientNNN/`` with ``Info.cfg``, the 4D
    cine ``patientNNN_4d.nii.gz``, and the ED/ES frames ``patientNNN_frameXX.nii.gz`` with ``..._gt.nii.gz``
    (labels 1 RV, 2 myocardium, 3 LV cavity). Patients are numbered from 1 (training) or 101 (testing); voxel
    size 1.5625 x 1.5625 x 10 mm scaled so the field of view matches a 256-pixel scan.

    .. code-block:: python

        from monai_skinattr.data import acdc_datalist, synthetic

        root = synthetic.make_acdc("data/acdc_synthetic", n=2, size=(48, 48, 6))
        print(len(acdc_datalist(root)))  # 4 (ED and ES of 2 patients)
    """
    if split not in ("training", "testing"):
        raise ValueError(f"split must be 'training' or 'testing', got '{split}'.")
    root = Path(root)
    params = {"n": n, "size": list(size), "seed": seed}
    _mark_started(root, "acdc", split, **params)
    h, w, d = size
    first = 1 if split == "training" else 101
    spacing = 1.5625 * 256 / max(h, w)
    affine = np.diag([spacing, spacing, 10.0, 1.0])
    rng_root = np.random.SeedSequence([seed, first])
    groups = ("DCM", "HCM", "MINF", "NOR", "RV")
    for k, child in tqdm(list(enumerate(rng_root.spawn(n))), desc=f"synthetic ACDC {split}", disable=not progress):
        rng = np.random.default_rng(child)
        pid = f"patient{first + k:03d}"
        pdir = root / split / pid
        pdir.mkdir(parents=True, exist_ok=True)
        es = int(rng.integers(n_frames // 3, n_frames - 1))
        center = (h / 2 + rng.uniform(-0.05, 0.05) * h, w / 2 + rng.uniform(-0.02, 0.08) * w)
        base_radius = min(h, w) * rng.uniform(0.09, 0.12)
        cine = np.zeros((h, w, d, n_frames), np.int16)
        labels = {}
        for frame in range(1, n_frames + 1):
            phase_scale = 1 - 0.3 * np.sin(np.pi * (frame - 1) / (2 * (es - 1))) if frame <= es else 0.7
            label = np.stack(
                [
                    _heart_slice(np.random.default_rng([seed, k, z]), (h, w), center, z / d, phase_scale, base_radius)
                    for z in range(d)
                ],
                axis=-1,
            )
            cine[..., frame - 1] = _cardiac_image(rng, label)
            if frame in (1, es):
                labels[frame] = label
        for frame, label in labels.items():
            save_nifti_atomic(cine[..., frame - 1], affine, pdir / f"{pid}_frame{frame:02d}.nii.gz")
            save_nifti_atomic(label, affine, pdir / f"{pid}_frame{frame:02d}_gt.nii.gz")
        save_nifti_atomic(cine, affine, pdir / f"{pid}_4d.nii.gz")
        info = {
            "ED": 1,
            "ES": es,
            "Group": groups[int(rng.integers(len(groups)))],
            "Height": round(float(rng.uniform(150, 195)), 1),
            "NbFrame": n_frames,
            "Weight": round(float(rng.uniform(50, 110)), 1),
        }
        write_text_atomic("".join(f"{key}: {value}\n" for key, value in info.items()), pdir / "Info.cfg")
    _mark_complete(root, "acdc", split, **params, labels=ACDC_LABELS)
    return root


# -------------------------------------------------------------------------------------------------------- IDRiD


def _fundus(rng, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float], float]:
    """Fundus photograph: dark surround, orange field of view, optic disc and branching vessels."""
    h, w = shape
    yy, xx = _grid(shape)
    cy, cx = h / 2, w / 2
    radius = h * 0.55
    fov = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    vignette = np.clip(1 - 0.35 * ((yy - cy) ** 2 + (xx - cx) ** 2) / radius**2, 0, 1)
    image = np.zeros((h, w, 3), np.float32)
    base = np.asarray([196, 86, 38], np.float32) * rng.uniform(0.85, 1.05)
    texture = 1 + 0.05 * _smooth_noise(rng, shape, h / 20)
    image[fov] = (base * (vignette * texture)[..., None])[fov]
    side = rng.choice([-1, 1])
    disc_c = (cy + rng.uniform(-0.05, 0.05) * h, cx + side * w * 0.22)
    disc_r = h * 0.075
    disc = _disks(shape, [disc_c], disc_r)
    _paint(image, disc, [250, 215, 140], 0.9)
    vessels = np.zeros(shape, bool)
    for _ in range(8):
        y, x = disc_c
        angle = rng.uniform(0, 2 * np.pi)
        for _step in range(int(h * 0.9)):
            angle += rng.normal(0, 0.08)
            y, x = y + np.sin(angle), x + np.cos(angle)
            if not (0 <= y < h and 0 <= x < w):
                break
            vessels[int(y), int(x)] = True
    vessels = ndimage.binary_dilation(vessels, iterations=max(1, h // 150)) & fov
    _paint(image, vessels, [130, 32, 22], 0.8)
    return image, fov, disc, disc_c, disc_r


def make_idrid(
    root: str | Path,
    n: int = 6,
    size: tuple[int, int] = (224, 336),
    seed: int = 0,
    split: str = "training",
    progress: bool = True,
) -> Path:
    """
    Write ``n`` synthetic fundus photographs in the IDRiD ``A. Segmentation`` layout with microaneurysm (tiny dark
    red dots, ``..._MA.tif``), hard exudate (yellow spots, ``..._EX.tif``) and optic disc (``..._OD.tif``) masks.
    Images are numbered ``IDRiD_01`` on for training and ``IDRiD_55`` on for testing, as in IDRiD.

    .. code-block:: python

        from monai_skinattr.data import idrid_datalist, synthetic

        root = synthetic.make_idrid("data/idrid_synthetic", n=2, size=(112, 224))
        print(len(idrid_datalist(root, lesion="MA")))  # 2
    """
    if split not in IDRID_SPLITS:
        raise ValueError(f"split must be one of {list(IDRID_SPLITS)}, got '{split}'.")
    root = Path(root)
    params = {"n": n, "size": list(size), "seed": seed}
    _mark_started(root, "idrid", split, **params)
    seg = root / "A. Segmentation"
    image_dir = seg / IMAGES / IDRID_SPLITS[split]
    image_dir.mkdir(parents=True, exist_ok=True)
    first = 1 if split == "training" else 55
    rng_root = np.random.SeedSequence([seed, first])
    for k, child in tqdm(list(enumerate(rng_root.spawn(n))), desc=f"synthetic IDRiD {split}", disable=not progress):
        rng = np.random.default_rng(child)
        image, fov, disc, disc_c, disc_r = _fundus(rng, size)
        allowed = ndimage.binary_erosion(fov, iterations=4) & ~ndimage.binary_dilation(disc, iterations=3)
        ma_r = max(1.0, size[0] / 220)
        ma_centers = _random_points(rng, allowed, int(rng.integers(8, 20)))
        _paint(image, _disks(size, ma_centers, ma_r), [95, 18, 12], 0.95)
        ex_centers = _random_points(rng, allowed, int(rng.integers(2, 6)))
        exudates = _disks(size, ex_centers, max(1.5, size[0] / 90))
        _paint(image, exudates, [240, 210, 90], 0.9)
        image += 2.5 * rng.standard_normal(image.shape).astype(np.float32) * fov[..., None]
        image_id = f"IDRiD_{first + k:02d}"
        save_image_atomic(_to_uint8(image), image_dir / f"{image_id}.jpg")
        for code, mask in (("MA", _disks(size, ma_centers, ma_r + 0.5)), ("EX", exudates), ("OD", disc)):
            mask_dir = seg / GROUNDTRUTHS / IDRID_SPLITS[split] / LESIONS[code]
            mask_dir.mkdir(parents=True, exist_ok=True)
            save_image_atomic(_mask8(mask), mask_dir / f"{image_id}_{code}.tif")
    _mark_complete(root, "idrid", split, **params)
    return root


# --------------------------------------------------------------------------------------------------- COVID-QU-Ex


def _chest(rng, shape, infected: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chest radiograph: bright body, dark lung fields with ribs, hazy infection patches inside the lungs."""
    h, w = shape
    yy, xx = _grid(shape)
    body, _ = _blob(rng, shape, (h * 0.55, w / 2), min(h, w) * 0.47, 0.05)
    image = np.where(body, 170.0, 25.0) + 8 * _smooth_noise(rng, shape, h / 25)
    lungs = np.zeros(shape, bool)
    for side in (-1, 1):
        ry, rx = h * rng.uniform(0.3, 0.34), w * rng.uniform(0.13, 0.16)
        lung = ((yy - h * 0.5) / ry) ** 2 + ((xx - (w / 2 + side * w * 0.2)) / rx) ** 2 < 1
        lungs |= lung
    ribs = (np.sin((yy + 0.15 * np.abs(xx - w / 2)) / h * 2 * np.pi * 9) > 0.6) & lungs
    image[lungs] = 70 + 6 * _smooth_noise(rng, shape, h / 30)[lungs]
    image[ribs] += 35
    infection = np.zeros(shape, bool)
    if infected:
        for center in _random_points(rng, ndimage.binary_erosion(lungs, iterations=h // 20), int(rng.integers(1, 4))):
            patch, _ = _blob(rng, shape, center, h * rng.uniform(0.06, 0.11), 0.3)
            infection |= patch & lungs
        haze = ndimage.gaussian_filter(infection.astype(np.float32), h / 100)
        image += 90 * haze * (1 + 0.3 * _smooth_noise(rng, shape, h / 40))
    image = ndimage.gaussian_filter(image, 0.8) + 3 * rng.standard_normal(shape)
    return _to_uint8(image), lungs, infection


def make_covidqu(
    root: str | Path,
    n: int = 12,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    split: str = "train",
    progress: bool = True,
) -> Path:
    """
    Write ``n`` synthetic chest radiographs in the COVID-QU-Ex ``Infection Segmentation Data`` layout, cycling
    through the classes COVID-19 / Non-COVID / Normal; only COVID-19 images have infection (empty masks otherwise),
    as in the real data. Grey-scale PNGs of 256x256 like the real ones.

    .. code-block:: python

        from monai_skinattr.data import covidqu_datalist, synthetic

        root = synthetic.make_covidqu("data/covidqu_synthetic", n=3, size=(64, 64))
        print(len(covidqu_datalist(root)))  # 3
    """
    if split not in COVID_SPLITS:
        raise ValueError(f"split must be one of {list(COVID_SPLITS)}, got '{split}'.")
    if n < len(COVID_CLASSES):
        raise ValueError(f"n must be at least {len(COVID_CLASSES)} (an image of every class {COVID_CLASSES}), got {n}.")
    root = Path(root)
    params = {"n": n, "size": list(size), "seed": seed}
    _mark_started(root, "covidqu", split, **params)
    base = root / "Infection Segmentation Data" / "Infection Segmentation Data" / COVID_SPLITS[split]
    rng_root = np.random.SeedSequence([seed, list(COVID_SPLITS).index(split)])
    for k, child in tqdm(
        list(enumerate(rng_root.spawn(n))), desc=f"synthetic COVID-QU-Ex {split}", disable=not progress
    ):
        rng = np.random.default_rng(child)
        cls = COVID_CLASSES[k % len(COVID_CLASSES)]
        image, lungs, infection = _chest(rng, size, infected=cls == "COVID-19")
        name = f"{cls.lower().replace('-', '_')}_{split}_{k:04d}.png"
        for folder, array in (("images", image), ("infection masks", _mask8(infection)), ("lung masks", _mask8(lungs))):
            (base / cls / folder).mkdir(parents=True, exist_ok=True)
            save_image_atomic(array, base / cls / folder / name)
    _mark_complete(root, "covidqu", split, **params)
    return root


# ------------------------------------------------------------------------------------------------------ Shenzhen


def make_shenzhen(
    root: str | Path, n: int = 12, size: tuple[int, int] = (256, 256), seed: int = 0, progress: bool = True
) -> Path:
    """
    Write ``n`` synthetic chest radiographs with lung masks in the Shenzhen layout: ``CXR_png/CHNCXR_NNNN_T.png``
    (grey-scale) and ``mask/CHNCXR_NNNN_T_mask.png`` (both lungs, 0/255). As in the real set, the first half are
    normal (``T`` = 0) and the rest show tuberculosis (``T`` = 1, drawn as hazy patches in the lungs). Every
    image has a mask. The set has no splits (its marker files use the split name ``"training"``).

    .. code-block:: python

        from monai_skinattr.data import shenzhen_datalist, synthetic

        root = synthetic.make_shenzhen("data/shenzhen_synthetic", n=4, size=(64, 64))
        print(len(shenzhen_datalist(root)))  # 4
    """
    root = Path(root)
    params = {"n": n, "size": list(size), "seed": seed}
    _mark_started(root, "shenzhen", "training", **params)
    image_dir, mask_dir = root / SHENZHEN_IMAGES, root / SHENZHEN_MASKS[0]
    rng_root = np.random.SeedSequence([seed, 662])
    for k, child in tqdm(list(enumerate(rng_root.spawn(n))), desc="synthetic Shenzhen", disable=not progress):
        tuberculosis = k >= (n + 1) // 2
        image, lungs, _ = _chest(np.random.default_rng(child), size, infected=tuberculosis)
        image_id = f"CHNCXR_{k + 1:04d}_{int(tuberculosis)}"
        save_image_atomic(image, image_dir / f"{image_id}.png")
        save_image_atomic(_mask8(lungs), mask_dir / f"{image_id}_mask.png")
    _mark_complete(root, "shenzhen", "training", **params)
    return root


# --------------------------------------------------------------------------------------------------- CVC-ColonDB


def _colonoscopy(rng, shape) -> tuple[np.ndarray, np.ndarray]:
    """Colonoscopy frame: reddish mucosa lit from the centre, dark lumen, folds, one domed polyp, specular spots."""
    h, w = shape
    short = min(h, w)
    yy, xx = _grid(shape)
    light = np.clip(1 - 0.55 * ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.6 * max(h, w)) ** 2, 0.3, 1)
    mucosa = np.asarray([205, 95, 80], np.float32) * rng.uniform(0.85, 1.05, 3)
    image = mucosa * (light * (1 + 0.06 * _smooth_noise(rng, shape, short / 10)))[..., None]
    folds = np.abs(_smooth_noise(rng, shape, short / 12)) < 0.12
    _paint(image, folds, [120, 40, 35], 0.5)
    lumen, _ = _blob(rng, shape, _random_points(rng, np.ones(shape, bool), 1)[0], short * 0.12, 0.3)
    _paint(image, lumen, [25, 8, 8], ndimage.gaussian_filter(lumen.astype(np.float32), short / 30))
    margin = np.zeros(shape, bool)
    margin[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    polyp, rho = _blob(rng, shape, _random_points(rng, margin, 1)[0], short * rng.uniform(0.1, 0.18), 0.15)
    dome = np.asarray([245, 150, 125], np.float32) * (0.75 + 0.35 * np.clip(1 - rho, 0, 1))[..., None]
    edge = ndimage.gaussian_filter(polyp.astype(np.float32), max(1.0, short / 100))[..., None]
    image = image * (1 - edge) + dome * edge
    glints = _disks(shape, _random_points(rng, np.ones(shape, bool), int(rng.integers(3, 8))), max(1.0, short / 80))
    _paint(image, glints, [255, 250, 245], 0.9)
    image += 3 * rng.standard_normal((h, w, 1)).astype(np.float32)
    return _to_uint8(image), polyp


def make_cvc_colondb(
    root: str | Path, n: int = 12, size: tuple[int, int] = (256, 288), seed: int = 0, progress: bool = True
) -> Path:
    """
    Write ``n`` synthetic colonoscopy frames with polyp masks in the CVC-ColonDB layout:
    ``CVC-ColonDB/images/1.png ... n.png`` (RGB) and ``CVC-ColonDB/masks/1.png ...`` (0/255), one polyp per frame.
    The set has no splits (its marker files use the split name ``"training"``).

    .. code-block:: python

        from monai_skinattr.data import cvc_colondb_datalist, synthetic

        root = synthetic.make_cvc_colondb("data/cvc_synthetic", n=4, size=(64, 64))
        print(len(cvc_colondb_datalist(root)))  # 4
    """
    root = Path(root)
    params = {"n": n, "size": list(size), "seed": seed}
    _mark_started(root, "cvc_colondb", "training", **params)
    folder = root / CVC_FOLDER
    rng_root = np.random.SeedSequence([seed, 300])
    for k, child in tqdm(list(enumerate(rng_root.spawn(n))), desc="synthetic CVC-ColonDB", disable=not progress):
        image, polyp = _colonoscopy(np.random.default_rng(child), size)
        save_image_atomic(image, folder / "images" / f"{k + 1}.png")
        save_image_atomic(_mask8(polyp), folder / "masks" / f"{k + 1}.png")
    _mark_complete(root, "cvc_colondb", "training", **params)
    return root


# ------------------------------------------------------------------------------------------------- bookkeeping


def _marker(root: Path, dataset: str, split: str) -> Path:
    return Path(root) / f".synthetic-{dataset}-{split}.json"


def _mark_started(root: Path, dataset: str, split: str, **params) -> None:
    """Before the first file: the split is no longer complete, and is in progress until :func:`_mark_complete`."""
    root.mkdir(parents=True, exist_ok=True)
    _marker(root, dataset, split).unlink(missing_ok=True)
    write_text_atomic(json.dumps(params, default=str), partial_marker(root, dataset, split))


def _mark_complete(root: Path, dataset: str, split: str, **params) -> None:
    write_text_atomic(
        json.dumps({"dataset": dataset, "split": split, **params}, default=str), _marker(root, dataset, split)
    )
    partial_marker(root, dataset, split).unlink(missing_ok=True)


def settings_of(root: str | Path, dataset: str, split: str) -> dict:
    """The settings a complete synthetic ``dataset`` split in ``root`` was made with (``{}`` if none is there)."""
    marker = _marker(Path(root), dataset, split)
    return json.loads(marker.read_text()) if marker.is_file() else {}


def is_complete(root: str | Path, dataset: str, split: str) -> bool:
    """Whether a synthetic ``dataset`` split was written to ``root`` completely (its marker file exists)."""
    return _marker(Path(root), dataset, split).is_file() and not is_partial(root, dataset, split)


def is_partial(root: str | Path, dataset: str, split: str) -> bool:
    """
    Whether a synthetic ``dataset`` split in ``root`` was started but not finished (generation interrupted).

    .. code-block:: python

        from monai_skinattr.data import synthetic

        if synthetic.is_partial("data/isic_synthetic", "isic", "training"):
            synthetic.make_isic("data/isic_synthetic", n=40)  # rewrites it
    """
    return partial_marker(root, dataset, split).is_file()


# --------------------------------------------------------------------------------------------- classification


def make_imagefolder(
    root: str | Path,
    n: int = 8,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
    split: str = "train",
    classes: int = 4,
    progress: bool = True,
) -> Path:
    """
    Write ``n`` RGB images per class in the ImageFolder layout ``<root>/<split>/class_<k>/<k>_<i>.png``, a stand-in
    for ImageNet when pretraining encoders. Class ``k`` is a texture: stripes at an angle of ``k·180°/classes``
    on smooth noise with a random colour, so the classes are learnable but not trivially by colour.

    .. code-block:: python

        from monai_skinattr.data import synthetic
        from monai_skinattr.data.imagefolder import imagefolder_datalist

        root = synthetic.make_imagefolder("data/imagefolder_synthetic", n=2, classes=3)
        print(len(imagefolder_datalist(root)[0]))  # 6
    """
    if classes < 2 or n < 1:
        raise ValueError(f"need at least 2 classes and 1 image per class, got {classes} and {n}.")
    root = Path(root)
    params = {"n": n, "size": list(size), "seed": seed, "classes": classes}
    _mark_started(root, "imagefolder", split, **params)
    yy, xx = _grid(size)
    rng_root = np.random.SeedSequence([seed, sum(map(ord, split))])
    jobs = [(k, i, child) for (k, i), child in zip(np.ndindex(classes, n), rng_root.spawn(classes * n), strict=True)]
    for k, i, child in tqdm(jobs, desc=f"synthetic ImageFolder {split}", disable=not progress):
        rng = np.random.default_rng(child)
        angle = np.pi * (k + rng.uniform(-0.15, 0.15)) / classes
        period = rng.uniform(6, 12) * max(size) / 64
        stripes = 0.5 + 0.5 * np.sin(
            2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 6.3)
        )
        noise = _smooth_noise(rng, (*size, 3), sigma=max(size) / 16)
        color = rng.uniform(0.2, 0.9, size=3)
        image = np.clip(0.15 + 0.7 * stripes[..., None] * color + 0.1 * noise, 0, 1)
        save_image_atomic(_to_uint8(255 * image), root / split / f"class_{k}" / f"{k}_{i:04d}.png")
    _mark_complete(root, "imagefolder", split, **params)
    return root


MAKERS: dict[str, Callable[..., Path]] = {
    "isic": make_isic,
    "acdc": make_acdc,
    "idrid": make_idrid,
    "covidqu": make_covidqu,
    "shenzhen": make_shenzhen,
    "cvc_colondb": make_cvc_colondb,
    "imagefolder": make_imagefolder,
}
#: datasets with no official splits: one folder, whose marker files use the split name "training".
SPLITLESS = ("shenzhen", "cvc_colondb")


def main(argv: list[str] | None = None) -> None:
    """
    Command line: ``python -m monai_skinattr.data.synthetic {isic,acdc,idrid,covidqu,shenzhen,cvc_colondb} --root DIR
    --n N``.
    """
    parser = argparse.ArgumentParser(prog="python -m monai_skinattr.data.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(MAKERS))
    parser.add_argument("--root", required=True, help="folder to write the dataset layout into")
    parser.add_argument("--n", type=int, default=None, help="number of images / patients")
    parser.add_argument("--size", type=int, nargs="+", default=None, help="H W (ACDC: H W D)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split", default=None, help="split name as the reader spells it (default: the training split)"
    )
    parser.add_argument("--year", type=int, default=2018, help="ISIC only: 2016, 2017 or 2018")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet PNG of the generated samples here")
    args = parser.parse_args(argv)
    kwargs = {"seed": args.seed}
    for key in ("n", "split"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    if args.size:
        kwargs["size"] = tuple(args.size)
    if args.dataset == "isic":
        kwargs["year"] = args.year
    if args.dataset in SPLITLESS and kwargs.pop("split", "training") != "training":
        parser.error(f"{args.dataset} has no splits; drop --split (hold a test set out with data.carve_validation)")
    root = MAKERS[args.dataset](args.root, **kwargs)
    print(f"wrote synthetic {args.dataset} to {root}")
    if args.sheet:
        from .contact_sheets import dataset_contact_sheet

        dataset_contact_sheet(args.dataset, root, args.sheet, split=kwargs.get("split"))
        print(f"wrote contact sheet {args.sheet}")


if __name__ == "__main__":
    main()
