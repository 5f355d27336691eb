"""The three datasets of the paper's Table 1 (SKIN, LUNG, COLON) as training / validation / test datalists."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ...data import cvc_colondb_datalist, shenzhen_datalist, synthetic
from ...data.checks import DatasetLayoutError
from ...data.folds import carve_validation
from ...data.prepare import ensure_synthetic, lesion_splits, prepare_isic

__all__ = ["DATASETS", "prepare_splits"]

#: dataset name -> (the paper's name, image channels)
DATASETS = {
    "isic2017": {"paper": "SKIN (ISIC 2017 Task 1)", "channels": 3},
    "shenzhen": {"paper": "LUNG (Shenzhen chest X-ray)", "channels": 1},
    "cvc_colondb": {"paper": "COLON (CVC-ColonDB)", "channels": 3},
}
_READERS = {
    "shenzhen": (shenzhen_datalist, synthetic.make_shenzhen),
    "cvc_colondb": (cvc_colondb_datalist, synthetic.make_cvc_colondb),
}


def prepare_splits(
    dataset: str,
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
    val_fraction: float = 0.2,
    test_fraction: float | int = 0.2,
    seed: int = 0,
) -> dict[str, list[dict]]:
    """
    ``{"training", "validation", "test"}`` datalists (``{"image", "label", "id"}``) of ``dataset``: ISIC (2017 in
    the paper) uses its official test split; Shenzhen and CVC-ColonDB have none, so ``test_fraction`` of the images
    (or that many, e.g. 50 for CVC-ColonDB as the paper) is held out, seeded. ``val_fraction`` of the rest selects
    checkpoints. The synthetic twin is generated into ``synthetic_dir`` (or ``dataset_dir`` with
    ``make_synthetic``) on first use, never into a folder holding other data.

    .. code-block:: python

        splits = prepare_splits("cvc_colondb", "/data/CVC-ColonDB", "bundle/data/cvc_synthetic", test_fraction=50)
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got '{dataset}'.")
    params = dict(synthetic_params or {})
    if dataset == "isic2017":
        root = prepare_isic(
            dataset_dir, synthetic_dir, {"year": 2017, **params}, make_synthetic, ["training", "test"], 1
        )
        return lesion_splits(root, val_fraction, seed)
    read, make = _READERS[dataset]
    root = ensure_synthetic(dataset_dir, synthetic_dir, dataset, make, params, make_synthetic)
    if not Path(root).is_dir():
        raise DatasetLayoutError(root, ["dataset_dir does not exist"])
    rest, test = carve_validation(read(root), fraction=test_fraction, seed=seed)
    train, val = carve_validation(rest, fraction=val_fraction, seed=seed)
    return {"training": train, "validation": val, "test": test}
