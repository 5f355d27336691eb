"""The dataset a bundle trains on: a real ISIC folder, validated, or the synthetic one where it was asked for."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..config import as_bool
from . import synthetic
from .checks import DatasetLayoutError, Problems, check_photos
from .folds import carve_validation
from .isic import LAYOUTS, detect_year, isic_datalist

__all__ = ["ensure_synthetic", "prepare_isic", "lesion_splits", "image_datalist"]

logger = logging.getLogger(__name__)


def prepare_isic(
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
    splits: Sequence[str] = ("training",),
    task: int = 2,
) -> str:
    """
    The ISIC folder to train on. ``dataset_dir`` must hold a real ISIC layout with ground truth for ``task``,
    unless it is the bundle's own ``synthetic_dir`` or ``make_synthetic`` is true: then synthetic ISIC ``splits``
    are generated there on first use with ``synthetic_params`` (``make_isic`` arguments, e.g. ``{"n": 40, "size":
    [128, 160], "year": 2016}``). Synthetic data never goes into a folder that holds other data.

    .. code-block:: python

        root = prepare_isic("/data/ISIC2018", "bundle/data/synthetic")  # validated, or a clear error

    Raises:
        DatasetLayoutError: ``dataset_dir`` does not exist, holds no ISIC layout (or none with ``task`` ground
            truth), or other data where synthetic data was asked for.
    """
    root = Path(dataset_dir).expanduser()
    asked = as_bool(make_synthetic, "make_synthetic")  # checked even when the folder alone decides
    if root.resolve() == Path(synthetic_dir).expanduser().resolve() or asked:
        return ensure_synthetic(root, synthetic_dir, "isic", synthetic.make_isic, synthetic_params, True, splits)
    expected = ", ".join(sorted({layout["images"].format(split="Training") for layout in LAYOUTS.values()}))
    if not root.is_dir():
        raise DatasetLayoutError(root, [f"dataset_dir does not exist; expected a folder holding {expected}"])
    try:
        year = detect_year(root)
    except FileNotFoundError:
        raise DatasetLayoutError(root, [f"not an ISIC challenge folder; expected one holding {expected}"]) from None
    if task == 2 and "task2" not in LAYOUTS[year]:
        raise DatasetLayoutError(root, [f"ISIC {year} has no attribute (Task 2) ground truth; use 2017 or 2018"])
    return str(root)


def lesion_splits(root: str | Path, val_fraction: float = 0.2, seed: int = 0) -> dict[str, list[dict]]:
    """
    ISIC Task 1 (lesion) datalists for a bundle: ``"test"`` is the year's official test split (its validation split
    when the test ground truth is absent), never trained on; ``"validation"`` (``val_fraction`` of the training
    split, carved deterministically) selects checkpoints; the rest is ``"training"``.

    .. code-block:: python

        splits = lesion_splits("/data/ISIC2016")  # ISIC 2016: 900 training images, 379 test
        print({k: len(v) for k, v in splits.items()})  # {'training': 720, 'validation': 180, 'test': 379}
    """
    layout = LAYOUTS[detect_year(root)]
    scored = [s for s in ("test", "validation") if s in layout["splits"]]
    test = None
    for split in scored:
        folder = Path(root) / layout["task1"].format(split=layout["splits"][split])
        if folder.is_dir():
            test = isic_datalist(root, task=1, split=split)
            break
    if test is None:
        raise DatasetLayoutError(root, [f"no Task 1 ground truth for a scored split ({' or '.join(scored)})"])
    train, val = carve_validation(isic_datalist(root, task=1, split="training"), fraction=val_fraction, seed=seed)
    return {"training": train, "validation": val, "test": test}


def image_datalist(folder: str | Path, validate: bool = True, channels: int | None = 3) -> list[dict]:
    """
    ``[{"image", "id"}]`` of the photos to segment: an ISIC root (its newest year's test, validation or training
    image folder, in that order) or any folder of ``.jpg`` / ``.png`` / ``.tif`` photos. With ``validate`` every photo
    is decoded first and every unreadable one, or one without ``channels`` channels (3: RGB, 1: grey, ``None``: any),
    is named in one error, before anything is segmented.

    .. code-block:: python

        photos = image_datalist("/data/ISIC2018")  # ISIC2018_Task1-2_Test_Input, checked

    Raises:
        DatasetLayoutError: no such folder, no photos, or photos that are unreadable or not RGB.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetLayoutError(root, ["folder of images does not exist"])
    try:
        year = detect_year(root)
    except FileNotFoundError:
        year = None
    if year is not None:
        for split in ("test", "validation", "training"):
            word = LAYOUTS[year]["splits"].get(split)
            if word and (root / LAYOUTS[year]["images"].format(split=word)).is_dir():
                root = root / LAYOUTS[year]["images"].format(split=word)
                break
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))
    files = [p for p in files if not p.stem.endswith("_superpixels")]
    if not files:
        raise DatasetLayoutError(root, ["no .jpg/.png/.tif photos found"])
    if validate:
        problems = Problems()
        check_photos(files, problems, image_channels=channels)
        problems.raise_if_any(root)
    return [{"image": str(p), "id": p.stem} for p in files]


def ensure_synthetic(
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    dataset: str,
    make: Callable[..., object],
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
    splits: Sequence[str] | None = None,
) -> str:
    """
    ``dataset_dir``, with the synthetic twin of ``dataset`` generated there when it is the bundle's own
    ``synthetic_dir`` or ``make_synthetic`` is true and the twin is not complete yet: ``make(root, split=s,
    **synthetic_params)`` for each of ``splits``, or ``make(root, **synthetic_params)`` for a dataset without splits
    (``None``; its markers use the split name ``"training"``). Synthetic data never goes into a folder that holds
    other data; a real folder is returned unchanged for its reader to validate.

    .. code-block:: python

        root = ensure_synthetic("/data/CVC-ColonDB", "bundle/data/cvc", "cvc_colondb", synthetic.make_cvc_colondb)
    """
    root = Path(dataset_dir).expanduser()
    own = root.resolve() == Path(synthetic_dir).expanduser().resolve()
    asked = as_bool(make_synthetic, "make_synthetic")  # checked even when the folder alone decides
    if not (own or asked):
        return str(root)
    marked = splits or ["training"]
    ours = any(synthetic.is_complete(root, dataset, s) or synthetic.is_partial(root, dataset, s) for s in marked)
    if not ours and root.is_dir() and any(root.iterdir()):
        raise DatasetLayoutError(
            root, ["make_synthetic: the folder holds other data; synthetic data only goes into a new or empty one"]
        )
    for split in marked:
        if not synthetic.is_complete(root, dataset, split):
            logger.info("generating synthetic %s %s data in %s", dataset, split, root)
            make(root, **({"split": split} if splits else {}), **dict(synthetic_params or {}))
        _check_same_synthetic(root, dataset, split, synthetic_params or {})
    return str(root)


def _check_same_synthetic(root: Path, dataset: str, split: str, asked: Mapping) -> None:
    """A complete synthetic split made with other settings than ``asked`` is an error naming them (it would
    silently stand in for the data asked for)."""
    made = synthetic.settings_of(root, dataset, split)
    differ = {k: v for k, v in json.loads(json.dumps(dict(asked), default=str)).items() if k in made and made[k] != v}
    if differ:
        found = ", ".join(f"{k}={made[k]} (asked {v})" for k, v in differ.items())
        raise DatasetLayoutError(
            root, [f"synthetic {dataset} {split} data made with other settings: {found}; to make it with the "
                   f"settings asked, delete it (`rm -r {shlex.quote(str(root))}`) and run again, or set another "
                   "dataset_dir"]
        )  # fmt: skip
