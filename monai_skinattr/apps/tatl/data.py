"""Where TATL's data comes from and how a cross-validation round splits it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from monai.utils import str2bool

from monai_skinattr.data import synthetic
from monai_skinattr.data.checks import DatasetLayoutError
from monai_skinattr.data.folds import carve_validation, fold_split, kfold
from monai_skinattr.data.isic import LAYOUTS, detect_year, isic_datalist

__all__ = ["prepare_dataset", "attributes_of", "split_datalists", "image_datalist", "as_bool"]

logger = logging.getLogger(__name__)


def as_bool(value: object, name: str) -> bool:
    """
    A switch as given in a config or on the command line (``--freeze_encoder false`` reaches the config as the
    string ``'false'``): MONAI's ``str2bool`` words (true/false, yes/no, t/f, y/n, 1/0, any case) and the integers
    1 / 0; anything else is an error naming the switch.

    .. code-block:: python

        as_bool("False", "augment")  # False
    """
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        value = str(value)
    try:
        return str2bool(value.strip() if isinstance(value, str) else value)
    except (ValueError, AttributeError):
        raise ValueError(f"'{name}' must be true or false (or 1 / 0), got {value!r}.") from None


def prepare_dataset(
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
) -> str:
    """
    The ISIC folder to train on. ``dataset_dir`` must hold a real ISIC 2017/2018 layout, unless it is the
    bundle's own ``synthetic_dir`` or ``make_synthetic`` is true: then the synthetic ISIC 2018 training split is
    generated there on first use with ``synthetic_params`` (``make_isic`` arguments, e.g. ``{"n": 40, "size":
    [128, 160]}``). Never generates data into a folder that was not meant for it.

    Raises:
        DatasetLayoutError: ``dataset_dir`` does not exist, or holds no ISIC layout, or an interrupted synthetic set.
    """
    root = Path(dataset_dir).expanduser()
    wanted = as_bool(make_synthetic, "make_synthetic")
    own = root.resolve() == Path(synthetic_dir).expanduser().resolve()
    if wanted or own:
        ours = synthetic.is_complete(root, "isic", "training") or synthetic.is_partial(root, "isic", "training")
        if not ours and root.is_dir() and any(root.iterdir()):
            raise DatasetLayoutError(
                root, ["make_synthetic: the folder holds other data; synthetic data only goes into a new or empty one"]
            )
        if not synthetic.is_complete(root, "isic", "training"):
            params = dict(synthetic_params or {})
            logger.info("generating synthetic ISIC 2018 training data in %s", root)
            synthetic.make_isic(root, split="training", year=2018, **params)
        return str(root)
    expected = ", ".join(sorted({layout["images"].format(split="Training") for layout in LAYOUTS.values()}))
    if not root.is_dir():
        raise DatasetLayoutError(root, [f"dataset_dir does not exist; expected a folder holding {expected}"])
    try:
        year = detect_year(root)
    except FileNotFoundError:
        raise DatasetLayoutError(root, [f"not an ISIC challenge folder; expected one holding {expected}"]) from None
    if "task2" not in LAYOUTS[year]:
        raise DatasetLayoutError(root, [f"ISIC {year} has no attribute (Task 2) ground truth; use 2017 or 2018"])
    return str(root)


def attributes_of(root: str | Path) -> list[str]:
    """The attribute names of the ISIC year in ``root`` (2017: four, no globules; 2018: five)."""
    return list(LAYOUTS[detect_year(root)]["attributes"])


def split_datalists(
    root: str | Path,
    fold: int = 0,
    num_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_fraction: float = 1.0,
) -> dict[str, list[dict]]:
    """
    One cross-validation round of TATL on the ISIC training split, with honest selection: fold ``fold`` is
    ``"test"`` (scored, never seen by any stage); the other folds give ``"validation"`` (``val_fraction`` of them,
    carved stratified by attribute presence, for checkpoint selection and early stopping) and ``"training"``.
    ``train_fraction`` < 1 keeps that share of the training part (TATL Figure 4), stratified the same way.

    Returns:
        ``{"training", "validation", "test"}`` Task 2 datalists (image, lesion and attribute mask paths, id).
    """
    data = isic_datalist(root, task=2, split="training")
    attributes = attributes_of(root)
    rest, test = fold_split(kfold(data, k=num_folds, seed=seed, stratify_by=attributes), fold)
    train, val = carve_validation(rest, fraction=val_fraction, seed=seed, stratify_by=attributes)
    if train_fraction < 1.0:
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}.")
        train, _ = carve_validation(train, fraction=1.0 - train_fraction, seed=seed, stratify_by=attributes)
    return {"training": train, "validation": val, "test": test}


def image_datalist(folder: str | Path) -> list[dict]:
    """``[{"image", "id"}]`` of the photos to segment: an ISIC root (its newest year's test, validation or
    training image folder, in that order) or any folder of ``.jpg`` / ``.png`` photos."""
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
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = [p for p in files if not p.stem.endswith("_superpixels")]
    if not files:
        raise DatasetLayoutError(root, ["no .jpg/.png photos found"])
    return [{"image": str(p), "id": p.stem} for p in files]
