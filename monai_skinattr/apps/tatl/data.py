"""Where TATL's data comes from and how a cross-validation round splits it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_skinattr.data.checks import DatasetLayoutError
from monai_skinattr.data.folds import carve_validation, fold_split, kfold
from monai_skinattr.data.isic import LAYOUTS, detect_year, isic_datalist
from monai_skinattr.data.prepare import prepare_isic

__all__ = [
    "LESION_SOURCES",
    "prepare_dataset",
    "attributes_of",
    "split_datalists",
    "segment_net_datalists",
    "task1_photos",
    "check_lesion_source",
]

#: where the lesion masks that crop the stage-2/3 training photos come from: the ground truth, the round's
#: Segment-Net (in-sample: it trained on those photos, unless ``lesion_dataset_dir`` trained it on others), or
#: ``inner_folds`` Segment-Nets over the training folds, each predicting the inner fold it never saw
LESION_SOURCES = ("ground_truth", "segment_net", "inner_folds")


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


def task1_photos(roots: str | Path | Sequence[str | Path]) -> list[dict]:
    """
    Every ISIC Task 1 photo with lesion ground truth in ``roots`` (one folder or several, e.g. ISIC 2017 and 2018;
    every split that has Task 1 ground truth), as ``{"image", "lesion", "id"}`` entries, the first of each id kept
    (ISIC 2017 and 2018 share photos).

    .. code-block:: python

        photos = task1_photos(["/data/ISIC2017", "/data/ISIC2018"])
    """
    entries: dict[str, dict] = {}
    for root, split in _task1_splits(roots):
        for e in isic_datalist(root, task=1, split=split):
            entries.setdefault(e["id"], {"image": e["image"], "lesion": e["label"], "id": e["id"]})
    return list(entries.values())


def _task1_splits(roots: str | Path | Sequence[str | Path]) -> list[tuple[str | Path, str]]:
    """``(folder, split)`` of every split with a Task 1 ground-truth folder in ``roots``, from the folder layout
    alone (no photo is read); a folder without any is an error naming it."""
    found = []
    for root in [roots] if isinstance(roots, (str, Path)) else roots:
        try:
            layout = LAYOUTS[detect_year(root)]
        except FileNotFoundError:
            raise DatasetLayoutError(Path(root), ["lesion_dataset_dir: not an ISIC challenge folder"]) from None
        splits = [
            s for s, word in layout["splits"].items() if (Path(root) / layout["task1"].format(split=word)).is_dir()
        ]
        if not splits:
            raise DatasetLayoutError(Path(root), ["no ISIC Task 1 lesion ground truth in lesion_dataset_dir"])
        found += [(root, split) for split in splits]
    return found


def segment_net_datalists(
    datalists: Mapping[str, Sequence[dict]],
    lesion_source: str = "inner_folds",
    holdout: int = -1,
    inner_folds: int = 5,
    lesion_dataset_dir: str | Sequence[str] = "",
    val_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, list[dict]]:
    """
    What one Segment-Net of a round (:func:`split_datalists` ``datalists``) trains on, selects on and predicts.

    - The round's Segment-Net (``holdout`` -1) trains on the round's training photos and selects on its validation
      photos; it predicts the photos whose crops ``lesion_source`` takes from it: training and validation
      (``"segment_net"``), validation only (``"inner_folds"``), none (``"ground_truth"``).
    - Inner Segment-Net ``holdout`` (``"inner_folds"`` only) trains on the training photos but inner fold
      ``holdout`` of ``inner_folds``, selects on the validation photos, and predicts that inner fold.
    - With ``lesion_dataset_dir`` (the paper's way, ``"segment_net"`` only), the Segment-Net trains on that
      folder's (or those folders') Task 1 photos (:func:`task1_photos`) less the round's scored photos, and selects
      on ``val_fraction`` of them; it predicts the training and validation photos.

    Returns:
        ``{"training", "validation", "predict"}`` datalists with ``image`` and ``lesion`` paths.

    .. code-block:: python

        rounds = split_datalists("data/isic2018_synthetic", fold=0)
        inner = segment_net_datalists(rounds, "inner_folds", holdout=1, inner_folds=5)
    """
    check_lesion_source(lesion_source, inner_folds, lesion_dataset_dir)
    train, val = list(datalists["training"]), list(datalists["validation"])
    if holdout >= 0:
        if lesion_source != "inner_folds" or not 0 <= holdout < inner_folds:
            raise ValueError(f"an inner Segment-Net (holdout {holdout}) needs lesion_source 'inner_folds' and "
                             f"holdout < inner_folds ({inner_folds}).")  # fmt: skip
        rest, held_out = fold_split(kfold(train, k=inner_folds, seed=seed), holdout)
        return {"training": rest, "validation": val, "predict": held_out}
    predict = {"segment_net": train + val, "inner_folds": val, "ground_truth": []}[lesion_source]
    if lesion_dataset_dir:
        scored = {e["id"] for e in datalists["test"]}
        photos = [e for e in task1_photos(lesion_dataset_dir) if e["id"] not in scored]
        train, val = carve_validation(photos, fraction=val_fraction, seed=seed)
    return {"training": train, "validation": val, "predict": predict}


def check_lesion_source(lesion_source: object, inner_folds: object = 5, lesion_dataset_dir: object = "") -> None:
    """
    Refuse a lesion source that cannot be honoured: ``lesion_source`` one of :data:`LESION_SOURCES`,
    ``inner_folds`` an integer >= 2, and ``lesion_dataset_dir`` (folders of ISIC Task 1 photos that train the
    Segment-Net instead of the training folds) only with ``"segment_net"``, whose predictions it makes out of sample.

    .. code-block:: python

        check_lesion_source("inner_folds", 5)  # fine
        check_lesion_source("inner_folds", 5, "/data/ISIC2017")  # ValueError: 'lesion_dataset_dir' ...
    """
    if lesion_source not in LESION_SOURCES:
        raise ValueError(f"'lesion_source' must be one of {list(LESION_SOURCES)}, got {lesion_source!r}.")
    if isinstance(inner_folds, bool) or not isinstance(inner_folds, int) or inner_folds < 2:
        raise ValueError(f"'inner_folds' must be an integer >= 2, got {inner_folds!r}.")
    if lesion_dataset_dir:
        if lesion_source != "segment_net":
            raise ValueError(
                f"'lesion_dataset_dir' trains the Segment-Net on other photos, so its lesions on the training photos "
                f"are already out of sample: use it with lesion_source 'segment_net', not {lesion_source!r}."
            )
        _task1_splits(lesion_dataset_dir)  # a missing folder, or one without Task 1 ground truth, is named here
