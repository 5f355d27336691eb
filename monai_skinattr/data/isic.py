"""ISIC 2016 / 2017 / 2018 Task 1 (lesion) and Task 2 (attribute) folder layouts as distributed.

.. code-block:: python

    from monai_skinattr.data.isic import isic_datalist

    train = isic_datalist("/data/ISIC2018", task=2, split="training")
    print(train[0].keys())  # image, lesion, globules, milia_like_cyst, ..., id
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..utils.io import save_image_atomic
from .checks import Problems, check_2d_pairs, check_not_partial, read_2d

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTES_2017",
    "COLORS",
    "LAYOUTS",
    "isic_datalist",
    "isic_image_list",
    "detect_year",
    "convert_isic2017_features",
]

#: ISIC 2018 Task 2 attribute names (the file-name suffixes), the project's one name for each attribute.
ATTRIBUTES = ("globules", "milia_like_cyst", "negative_network", "pigment_network", "streaks")
#: Display colour of the lesion and each attribute (overlays, contact sheets).
COLORS = {
    "lesion": (255, 255, 255),
    "globules": (255, 60, 60),
    "milia_like_cyst": (255, 230, 0),
    "negative_network": (0, 200, 255),
    "pigment_network": (60, 255, 60),
    "streaks": (255, 0, 255),
}
#: ISIC 2017 Part 2 has no globules.
ATTRIBUTES_2017 = ("milia_like_cyst", "negative_network", "pigment_network", "streaks")

#: Folder and file names per challenge year; ``{split}`` is the challenge's own split word.
LAYOUTS = {
    2016: {
        "splits": {"training": "Training", "test": "Test"},
        "images": "ISBI2016_ISIC_Part1_{split}_Data",
        "task1": "ISBI2016_ISIC_Part1_{split}_GroundTruth",
        "task1_suffix": "_Segmentation.png",
    },
    2017: {
        "splits": {"training": "Training", "validation": "Validation", "test": "Test_v2"},
        "images": "ISIC-2017_{split}_Data",
        "task1": "ISIC-2017_{split}_Part1_GroundTruth",
        "task1_suffix": "_segmentation.png",
        "task2": "ISIC-2017_{split}_Part2_GroundTruth",
        "attributes": ATTRIBUTES_2017,
    },
    2018: {
        "splits": {"training": "Training", "validation": "Validation", "test": "Test"},
        "images": "ISIC2018_Task1-2_{split}_Input",
        "task1": "ISIC2018_Task1_{split}_GroundTruth",
        "task1_suffix": "_segmentation.png",
        "task2": "ISIC2018_Task2_{split}_GroundTruth",
        "attributes": ATTRIBUTES,
    },
}


def detect_year(root: str | Path) -> int:
    """
    The challenge year whose image folders are in ``root`` (the newest if several are).

    Raises:
        FileNotFoundError: ``root`` does not exist, or holds none of the challenge image folders (the message lists
            them, and the folder the user probably meant when one is next to or inside ``root``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ISIC dataset folder '{root}' does not exist.")
    for year in sorted(LAYOUTS, reverse=True):
        layout = LAYOUTS[year]
        if any((root / layout["images"].format(split=s)).is_dir() for s in layout["splits"].values()):
            return year
    expected = [
        LAYOUTS[y]["images"].format(split=s)
        for y in sorted(LAYOUTS, reverse=True)
        for s in LAYOUTS[y]["splits"].values()
    ]
    nearby = [root.parent, *sorted(p for p in root.iterdir() if p.is_dir())]
    meant = [p for p in nearby if any((p / name).is_dir() for name in expected)]
    if meant:
        hint = f" Did you mean '{meant[0]}'?"
    else:
        content = sorted(p.name for p in root.iterdir())
        hint = f" It holds {content[:5]}{' ...' if len(content) > 5 else ''}." if content else " It is empty."
    raise FileNotFoundError(
        f"'{root}' holds no ISIC 2016/2017/2018 image folder; expected the challenge folders as unzipped, one of: "
        f"{', '.join(expected)}.{hint}"
    )


def _folder(root: Path, pattern: str) -> Path | None:
    """``root/pattern``, also accepting the versioned names ISIC used for re-releases (``..._v3``)."""
    exact = root / pattern
    if exact.is_dir():
        return exact
    versioned = sorted(p for p in root.glob(pattern + "_v*") if p.is_dir())
    return versioned[-1] if versioned else None


def _index(folder: Path, suffix_re: str) -> dict[str, Path]:
    """Map image id -> file for files named ``ISIC_xxxxxxx<suffix>`` in ``folder``."""
    pattern = re.compile(rf"^(ISIC_\d{{7}}){suffix_re}$")
    found = {}
    for name in os.listdir(folder):
        m = pattern.match(name)
        if m:
            found[m.group(1)] = folder / name
    return found


#: photo file suffixes read from an ISIC image folder (the challenges ship JPEGs; 8- or 16-bit PNG and TIFF too)
PHOTO_SUFFIX = r"\.(?:jpg|jpeg|png|tif|tiff)"


def _photos(image_dir: Path, problems: Problems) -> dict[str, Path]:
    """Map image id -> photo in ``image_dir``; two photos of one id (``ISIC_x.jpg``, ``ISIC_x.png``) are a problem."""
    pattern = re.compile(rf"^(ISIC_\d{{7}}){PHOTO_SUFFIX}$", re.IGNORECASE)
    found: dict[str, Path] = {}
    for name in sorted(os.listdir(image_dir)):
        m = pattern.match(name)
        if not m:
            continue
        if m.group(1) in found:
            problems.append(f"{image_dir / name}: a second photo of {m.group(1)} (also {found[m.group(1)].name})")
        found.setdefault(m.group(1), image_dir / name)
    if not found:
        problems.append(f"{image_dir}: no ISIC_xxxxxxx photos (.jpg, .jpeg, .png, .tif, .tiff)")
    return found


def isic_datalist(
    root: str | Path,
    task: int = 1,
    split: str = "training",
    year: int | None = None,
    attributes: tuple[str, ...] | None = None,
    validate: bool = True,
    cache_dir: str | Path | None = None,
) -> list[dict]:
    """
    Datalist of an ISIC challenge folder, sorted by image id.

    Task 1 entries are ``{"image", "label", "id"}``; Task 2 entries are ``{"image", <attribute>: mask path, ...,
    "id"}`` plus ``"lesion"`` when the Task 1 ground truth of that split is present (TATL's ground-truth crop).
    ISIC 2017 Part 2 ground truth is superpixel-based: it is converted once to per-attribute masks named like
    ISIC 2018's (``ISIC_xxxxxxx_attribute_<name>.png``) under ``cache_dir``.

    Args:
        root: folder holding the challenge folders as unzipped (e.g. ``ISIC2018_Task1-2_Training_Input``).
        task: 1 (lesion segmentation) or 2 (attribute detection; 2017 and 2018 only).
        split: ``"training"``, ``"validation"`` or ``"test"``.
        year: 2016, 2017 or 2018; detected from the folder names when ``None``.
        attributes: Task 2 attributes to include (default: all of that year).
        validate: decode every file and check that photos are RGB, masks single-channel, binary and of their
            photo's size; all problems are raised together.
        cache_dir: where converted ISIC 2017 masks go (default ``<root>/ISIC-2017_<split>_Part2_masks``).

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no ISIC layout (the expected folder names are listed).
        DatasetLayoutError: missing or extra files, unreadable files, photos that are not RGB, masks that are not
            single-channel, mask size mismatch, non-binary masks, or an interrupted synthetic generation.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ISIC dataset folder '{root}' does not exist.")
    check_not_partial(root, "isic", split)
    year = detect_year(root) if year is None else year
    if year not in LAYOUTS:
        raise ValueError(f"year must be one of {sorted(LAYOUTS)}, got {year}.")
    layout = LAYOUTS[year]
    if split not in layout["splits"]:
        raise ValueError(f"ISIC {year} has splits {list(layout['splits'])}, got '{split}'.")
    if task not in (1, 2) or (task == 2 and "task2" not in layout):
        raise ValueError(f"ISIC {year} has no Task {task}.")
    word = layout["splits"][split]
    problems = Problems()

    image_dir = root / layout["images"].format(split=word)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"missing image folder '{image_dir}'.")
    images = _photos(image_dir, problems)
    entries = {i: {"image": str(p), "id": i} for i, p in sorted(images.items())}

    lesion_key = "label" if task == 1 else "lesion"
    mask_keys: list[str] = []
    task1_dir = _folder(root, layout["task1"].format(split=word))
    if task == 1 and task1_dir is None:
        problems.append(f"{root / layout['task1'].format(split=word)}: missing lesion ground-truth folder")
    if task1_dir is not None:
        _attach(entries, _index(task1_dir, re.escape(layout["task1_suffix"])), lesion_key, task1_dir, problems)
        mask_keys.append(lesion_key)

    if task == 2:
        attrs = tuple(layout["attributes"] if attributes is None else attributes)
        unknown = set(attrs) - set(layout["attributes"])
        if unknown:
            raise ValueError(
                f"ISIC {year} Task 2 has no attribute(s) {sorted(unknown)}; it has {layout['attributes']}."
            )
        task2_dir = _folder(root, layout["task2"].format(split=word))
        if task2_dir is None:
            problems.append(f"{root / layout['task2'].format(split=word)}: missing attribute ground-truth folder")
        else:
            if year == 2017:
                cache = Path(cache_dir) if cache_dir else root / f"ISIC-2017_{word}_Part2_masks"
                task2_dir = convert_isic2017_features(image_dir, task2_dir, cache, problems)
            for name in attrs:
                found = _index(task2_dir, rf"_attribute_{name}\.png")
                _attach(entries, found, name, task2_dir, problems)
            mask_keys.extend(attrs)

    if validate:
        desc = f"checking ISIC {year} {split}"
        check_2d_pairs(entries.values(), "image", mask_keys, problems, desc, image_channels=3, mask_channels=1)
    problems.raise_if_any(root)
    return list(entries.values())


def isic_image_list(root: str | Path, split: str = "test", year: int | None = None) -> list[dict]:
    """Datalist ``[{"image", "id"}]`` of the images of an ISIC split, ground truth not needed (inference)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ISIC dataset folder '{root}' does not exist.")
    check_not_partial(root, "isic", split)
    year = detect_year(root) if year is None else year
    if year not in LAYOUTS:
        raise ValueError(f"year must be one of {sorted(LAYOUTS)}, got {year}.")
    layout = LAYOUTS[year]
    if split not in layout["splits"]:
        raise ValueError(f"ISIC {year} has splits {list(layout['splits'])}, got '{split}'.")
    image_dir = root / layout["images"].format(split=layout["splits"][split])
    if not image_dir.is_dir():
        raise FileNotFoundError(f"missing image folder '{image_dir}'.")
    problems = Problems()
    images = _photos(image_dir, problems)
    problems.raise_if_any(root)
    return [{"image": str(p), "id": i} for i, p in sorted(images.items())]


def _attach(entries: dict[str, dict], masks: dict[str, Path], key: str, folder: Path, problems: Problems) -> None:
    """Add ``masks`` under ``key`` to ``entries``; report images without a mask and masks without an image."""
    for image_id, entry in entries.items():
        if image_id in masks:
            entry[key] = str(masks[image_id])
        else:
            problems.append(f"{Path(entry['image']).name}: no '{key}' mask in {folder}")
    for image_id in sorted(set(masks) - set(entries)):
        problems.append(f"{masks[image_id]}: mask without a matching image")


def convert_isic2017_features(
    image_dir: str | Path, features_dir: str | Path, out_dir: str | Path, problems: Problems | None = None
) -> Path:
    """
    Turn ISIC 2017 Part 2 superpixel ground truth (``ISIC_x_superpixels.png`` beside the images, where a
    superpixel's index is ``R + 256 G + 65536 B``, and ``ISIC_x_features.json`` listing 0/1 per superpixel and
    attribute) into per-attribute binary masks ``ISIC_x_attribute_<name>.png`` (0/255) in ``out_dir``.
    Already converted images are skipped; each mask is written under a temporary name and then renamed.
    """
    image_dir, features_dir, out_dir = Path(image_dir), Path(features_dir), Path(out_dir)
    problems = Problems() if problems is None else problems
    out_dir.mkdir(parents=True, exist_ok=True)
    features = _index(features_dir, r"_features\.json")
    for image_id, json_path in tqdm(sorted(features.items()), desc="converting ISIC 2017 superpixels", unit="image"):
        targets = {n: out_dir / f"{image_id}_attribute_{n}.png" for n in ATTRIBUTES_2017}
        if all(t.exists() for t in targets.values()):
            continue
        sp_path = image_dir / f"{image_id}_superpixels.png"
        try:
            rgb = read_2d(sp_path).astype(np.int64)
            index = rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)
            values = json.loads(json_path.read_text())
        except Exception as e:
            problems.append(f"{sp_path} / {json_path.name}: cannot convert superpixel ground truth ({e})")
            continue
        for name, target in targets.items():
            if name not in values:
                problems.append(f"{json_path}: no '{name}' entry")
                continue
            labels = np.asarray(values[name])
            if index.max() >= len(labels):
                problems.append(f"{json_path}: '{name}' lists {len(labels)} superpixels, image has {index.max() + 1}")
                continue
            mask = np.isin(index, np.flatnonzero(labels > 0)).astype(np.uint8) * 255
            save_image_atomic(mask, target)
    return out_dir
