"""Where TATL's data comes from and how a cross-validation round splits it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monai_skinattr.data.checks import DatasetLayoutError
from monai_skinattr.data.folds import carve_validation, fold_split, kfold
from monai_skinattr.data.isic import LAYOUTS, detect_year, isic_datalist
from monai_skinattr.data.prepare import prepare_isic

__all__ = ["prepare_dataset", "attributes_of", "split_datalists"]


def prepare_dataset(
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
) -> str:
    """
    The ISIC 2017/2018 folder TATL trains on (:func:`monai_skinattr.data.prepare_isic` with Task 2 ground truth):
    ``dataset_dir`` validated, or the synthetic ISIC 2018 training split generated into the bundle's own
    ``synthetic_dir`` (or into ``dataset_dir`` when ``make_synthetic`` is true) on first use.
    """
    return prepare_isic(dataset_dir, synthetic_dir, {"year": 2018, **dict(synthetic_params or {})}, make_synthetic)


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
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}.")
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be one of 0..{num_folds - 1} (num_folds {num_folds}), got {fold}.")
    data = isic_datalist(root, task=2, split="training")
    attributes = attributes_of(root)
    try:
        rest, test = fold_split(kfold(data, k=num_folds, seed=seed, stratify_by=attributes), fold)
        train, val = carve_validation(rest, fraction=val_fraction, seed=seed, stratify_by=attributes)
        if train_fraction < 1.0:
            train, _ = carve_validation(train, fraction=1.0 - train_fraction, seed=seed, stratify_by=attributes)
    except ValueError as e:
        raise DatasetLayoutError(
            root,
            [
                f"{len(data)} training image(s) cannot give fold {fold} of {num_folds}, a validation split "
                f"(val_fraction {val_fraction}) and training images ({e})"
            ],
        ) from None
    return {"training": train, "validation": val, "test": test}
