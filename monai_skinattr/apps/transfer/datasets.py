"""The transfer study's downstream datasets: ACDC, COVID-QU-Ex and IDRiD as the thesis splits them, and the flat list
of training samples (ACDC slices, IDRiD windows) a batch draws from.

.. code-block:: python

    from monai_skinattr.apps.transfer import downstream_splits

    splits = downstream_splits("acdc", "/data/ACDC/database", "bundles/transfer/data/acdc_synthetic")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
from monai.data import CacheDataset
from monai.transforms import Compose, Transform

from ...data import DatasetLayoutError, acdc_datalist, covidqu_datalist, idrid_datalist, synthetic
from ...data.folds import carve_validation
from ...data.prepare import ensure_synthetic

__all__ = ["DATASETS", "dataset_spec", "downstream_splits", "expand"]

#: per dataset: class names (background first), input channels, the splits its synthetic twin writes and the default
#: synthetic parameters (the ``synthetic.make_<name>`` arguments)
DATASETS: dict[str, dict] = {
    "acdc": {
        "classes": ("background", "RV", "MYO", "LV"),
        "channels": 1,
        "splits": ("training", "testing"),
        "make": synthetic.make_acdc,
        "synthetic": {"n": 10, "size": [128, 128, 8], "seed": 0},
    },
    "covidqu": {
        "classes": ("background", "infection"),
        "channels": 1,
        "splits": ("train", "val", "test"),
        "make": synthetic.make_covidqu,
        "synthetic": {"n": 24, "size": [256, 256], "seed": 0},
    },
    "idrid": {
        "classes": ("background", "microaneurysms"),
        "channels": 3,
        "splits": ("training", "testing"),
        "make": synthetic.make_idrid,
        "synthetic": {"n": 6, "size": [224, 448], "seed": 0},
    },
}


def dataset_spec(dataset_name: str) -> dict:
    """``DATASETS[dataset_name]``, or a ``ValueError`` naming the datasets there are."""
    if dataset_name not in DATASETS:
        raise ValueError(f"dataset_name must be one of {list(DATASETS)}, got '{dataset_name}'.")
    return DATASETS[dataset_name]


def downstream_splits(
    dataset_name: str,
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, list[dict]]:
    """
    ``{"training", "validation", "test"}`` datalists of files as the thesis splits them: ACDC = the challenge's
    ED and ES frames, training patients 1–100, test 101–150; COVID-QU-Ex = COVID-19 images with infection masks,
    training = official Train + Val, test = official Test; IDRiD = microaneurysm masks, 54 training and 27 test
    images. ``"validation"`` (``val_fraction`` of the training data, seeded; whole patients for ACDC, balanced over
    the pathology groups) selects checkpoints and is never trained on; the test split is never used for selection.
    ``dataset_dir`` is validated by the dataset's reader; the synthetic twin is generated there when it is the
    bundle's own ``synthetic_dir`` or ``make_synthetic`` is true (``synthetic_params``: ``make_<dataset>``
    arguments, default ``DATASETS[dataset_name]["synthetic"]``).

    .. code-block:: python

        splits = downstream_splits("covidqu", "/data/COVID-QU-Ex", "bundle/data/covidqu_synthetic")
        print({k: len(v) for k, v in splits.items()})  # {'training': 1864, 'validation': 466, 'test': 583}
    """
    spec = dataset_spec(dataset_name)
    params = spec["synthetic"] if synthetic_params is None else synthetic_params
    with idist.one_rank_first():  # under torchrun, rank 0 writes the synthetic twin before the others read it
        root = ensure_synthetic(
            dataset_dir, synthetic_dir, dataset_name, spec["make"], params, make_synthetic, list(spec["splits"])
        )
    if not Path(root).is_dir():
        raise DatasetLayoutError(root, [f"dataset_dir does not exist; expected the {dataset_name} layout"])
    if dataset_name == "acdc":
        train, test = acdc_datalist(root, "training"), acdc_datalist(root, "testing")
        train, val = _carve_patients(train, val_fraction, seed)
    elif dataset_name == "covidqu":
        train = covidqu_datalist(root, "train+val", classes=("COVID-19",))
        test = covidqu_datalist(root, "test", classes=("COVID-19",))
        train, val = carve_validation(train, val_fraction, seed)
    else:
        train, test = idrid_datalist(root, "MA", "training"), idrid_datalist(root, "MA", "testing")
        train, val = carve_validation(train, val_fraction, seed)
    return {"training": train, "validation": val, "test": test}


def _carve_patients(frames: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole ACDC patients (both frames), balanced over the pathology groups."""
    group = {e["patient"]: e.get("group", "") for e in frames}
    names = sorted(set(group.values()))
    rows = [{"patient": p, **{g: int(group[p] == g) for g in names}} for p in sorted(group)]
    _, held = carve_validation(rows, fraction, seed, stratify_by=names if len(names) > 1 else ())
    val = {r["patient"] for r in held}
    return [e for e in frames if e["patient"] not in val], [e for e in frames if e["patient"] in val]


def expand(data: Sequence[dict], transforms: Sequence[Transform], num_workers: int = 0) -> list[dict]:
    """
    The training samples: the deterministic ``transforms`` applied once to every item of ``data`` (MONAI's
    ``CacheDataset``, in ``num_workers`` threads) and the lists they return — ACDC slices, IDRiD windows — flattened,
    so that a batch holds ``batch_size`` samples shuffled over the whole training set, as the thesis trains.

    .. code-block:: python

        slices = expand(acdc_datalist("/data/ACDC/database"), preprocessing("acdc", "train"))  # 1902 slices
    """
    cache = CacheDataset(list(data), Compose(transforms), cache_rate=1.0, num_workers=num_workers, copy_cache=False)
    items = [cache[i] for i in range(len(cache))]
    return [sample for item in items for sample in (item if isinstance(item, list) else [item])]
