"""COVID-QU-Ex "Infection Segmentation Data" layout: chest X-rays with infection and lung masks.

.. code-block:: python

    from monai_skinattr.data.covidqu import covidqu_datalist

    # the thesis' sets: training = official Train + Val (2330 COVID-19 images), test = official Test (583)
    train = covidqu_datalist("/data/COVID-QU-Ex", split="train+val", classes=("COVID-19",))
    test = covidqu_datalist("/data/COVID-QU-Ex", split="test", classes=("COVID-19",))
"""

from __future__ import annotations

from pathlib import Path

from .checks import Problems, check_2d_pairs, check_not_partial

__all__ = ["CLASSES", "SPLITS", "covidqu_datalist", "infection_root"]

CLASSES = ("COVID-19", "Non-COVID", "Normal")
SPLITS = {"train": "Train", "val": "Val", "test": "Test"}
_FOLDER = "Infection Segmentation Data"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def infection_root(root: str | Path) -> Path:
    """The innermost ``Infection Segmentation Data`` folder (the archive nests it twice), given it or a parent."""
    root = Path(root)
    while (root / _FOLDER).is_dir():
        root = root / _FOLDER
    return root


def covidqu_datalist(
    root: str | Path, split: str = "train", classes: tuple[str, ...] = CLASSES, validate: bool = True
) -> list[dict]:
    """
    Datalist ``[{"image", "label", "lung", "class", "id"}]`` where ``label`` is the infection mask.

    Non-COVID and Normal images have empty infection masks in COVID-QU-Ex.

    Args:
        root: the ``Infection Segmentation Data`` folder or a folder holding it.
        split: ``"train"``, ``"val"`` or ``"test"``, or several joined by ``"+"`` (their entries in turn):
            ``"train+val"`` with ``classes=("COVID-19",)`` is the pretraining-length thesis' training set (2330
            images in the real data; its test set is ``"test"``, 583 images, and it uses no healthy images).
        classes: subset of ``CLASSES`` to include.
        validate: decode every file and check mask sizes and values.

    Raises:
        DatasetLayoutError: missing or extra files, unreadable files, mask size mismatch, non-binary masks, or an
            interrupted synthetic generation.
    """
    parts = split.split("+")
    if not set(parts) <= set(SPLITS) or len(set(parts)) < len(parts):
        raise ValueError(f"split must be one of {list(SPLITS)} or several of them joined by '+', got '{split}'.")
    if len(parts) > 1:
        return [e for part in parts for e in covidqu_datalist(root, part, classes, validate)]
    unknown = set(classes) - set(CLASSES)
    if unknown:
        raise ValueError(f"unknown classes {sorted(unknown)}; COVID-QU-Ex has {CLASSES}.")
    inner = infection_root(root)
    folder = inner
    while True:  # the generator's marker lies in the folder holding the (twice nested) data folder
        check_not_partial(folder, "covidqu", split)
        if folder.name != _FOLDER or folder == folder.parent:
            break
        folder = folder.parent
    base = inner / SPLITS[split]
    if not base.is_dir():
        raise FileNotFoundError(f"missing COVID-QU-Ex split folder '{base}'.")
    problems = Problems()
    entries = []
    for cls in classes:
        folders = {
            k: base / cls / name
            for k, name in (("image", "images"), ("label", "infection masks"), ("lung", "lung masks"))
        }
        absent = [str(f) for f in folders.values() if not f.is_dir()]
        if absent:
            problems.extend(f"{f}: missing folder" for f in absent)
            continue
        files = {k: {p.name: p for p in f.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES} for k, f in folders.items()}
        for name in sorted(files["image"]):
            entry = {"image": str(files["image"][name]), "class": cls, "id": Path(name).stem}
            for key in ("label", "lung"):
                if name in files[key]:
                    entry[key] = str(files[key][name])
                else:
                    problems.append(f"{files['image'][name]}: no matching file in {folders[key]}")
            entries.append(entry)
        for key in ("label", "lung"):
            problems.extend(
                f"{files[key][n]}: mask without a matching image" for n in sorted(set(files[key]) - set(files["image"]))
            )
        if not files["image"]:
            problems.append(f"{folders['image']}: no images")
    if validate:
        check_2d_pairs(entries, "image", ["label", "lung"], problems, desc=f"checking COVID-QU-Ex {split}")
    problems.raise_if_any(base)
    return entries
