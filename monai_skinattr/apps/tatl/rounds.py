"""One TATL cross-validation round (Alg. 1) as the bundle runs of a plan, and what a run is called in the paper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_skinattr.config import as_bool
from monai_skinattr.runner import BundleRun

__all__ = ["SWITCHES", "LESION_CROPS", "lesion_crops", "round_runs", "run_label"]

#: switches of the TATL configs, turned into booleans before they are recorded (``"false"`` from the command line)
SWITCHES = ("crop", "augment", "freeze_encoder", "make_synthetic")
#: settings only the stage-3 runs get: TATL's FE freezes the attribute segmenters' encoders, nothing else, and
#: Figure 4 subsamples the target segmenters' training data only
STAGE3_ONLY = ("freeze_encoder", "train_fraction")


def run_label(stages: Sequence[int], overrides: Mapping | None = None) -> str:
    """
    What a run is, as the paper names its columns: ``"TATL"`` (stages 1, 2, 3) or ``"Stage 2,3"`` etc. (``crop``
    false removes stage 1), what departs from the default in brackets (the crops' lesions: ground truth, in-sample
    or a Segment-Net trained on a separate Task 1 set, :data:`LESION_CROPS`; FE; augmentation), and
    ``"w/o ImageNet"`` when no ImageNet encoder weights were loaded.

    .. code-block:: python

        run_label([1, 2, 3], {"freeze_encoder": True})  # 'TATL (FE) w/o ImageNet'
    """
    o = overrides or {}
    run = set(stages) - ({1} if not as_bool(o.get("crop", True), "crop") else set())
    label = "TATL" if run == {1, 2, 3} else "Stage " + ",".join(map(str, sorted(run)))
    extras = [LESION_CROPS[lesion_crops(o)]] if 1 in run and lesion_crops(o) in LESION_CROPS else []
    extras += [
        text for key, text in (("freeze_encoder", "FE"), ("augment", "augmentation")) if as_bool(o.get(key, False), key)
    ]
    label += f" ({', '.join(extras)})" if extras else ""
    return label + ("" if o.get("encoder_weights") else " w/o ImageNet")


#: how a label names the crops' lesions where they are not the default (inner-fold predictions)
LESION_CROPS = {
    "ground_truth": "ground-truth lesion crops",
    "segment_net": "in-sample lesion crops",
    "task1": "Task 1 Segment-Net",
}


def lesion_crops(overrides: Mapping) -> str:
    """Where a run's crops take their lesions from: a :data:`~monai_skinattr.apps.tatl.LESION_SOURCES` value, or
    ``"task1"`` (a Segment-Net trained on ``lesion_dataset_dir``)."""
    source = overrides.get("lesion_source", "inner_folds")
    return "task1" if source == "segment_net" and overrides.get("lesion_dataset_dir") else source


def round_runs(
    run_dir: str | Path,
    fold: int,
    attributes: Sequence[str],
    epochs: Mapping[str, int],
    overrides: Mapping,
    stages: Sequence[int] = (1, 2, 3),
    prefix: str = "",
    pretext_only: bool = False,
    subset: bool = False,
) -> list[BundleRun]:
    """
    The bundle runs of round ``fold`` in order, each named ``<prefix><stage>``: ``lesion`` and ``predict_lesion``
    (stage 1: the Segment-Net and the lesion masks of the photos its crops come from; ``lesion_source``
    ``"inner_folds"`` adds ``lesion/inner<k>`` and ``predict_lesion/inner<k>``, the inner Segment-Nets and their
    held-out lesion masks, ``segment_net_datalists``), ``union/<arch>`` (stage 2), ``attribute/<name>/<arch>``
    (stage 3, one per attribute and shape), ``assemble`` (the cascade, ``models/model.pt``) and ``evaluate``
    (inference on the scored fold + ISIC Task 2 scores in ``<run_dir>/eval/attribute_scores.json``). Every stage
    trains on the training folds and selects on a validation split carved from them.

    .. code-block:: python

        epochs = {"lesion": 6, "union": 6, "attribute": 4}
        settings = {"archs": ["unet"], "crop": True, "lesion_source": "inner_folds", "inner_folds": 5}
        runs = round_runs("runs/fold0", 0, ["streaks"], epochs, settings)

    Args:
        run_dir: the round's folder (``models/``, ``eval/``).
        fold: the scored fold.
        attributes: the dataset's attributes (one stage-3 run each per shape).
        epochs: maximum epochs per stage, ``{"lesion", "union", "attribute"}``.
        overrides: config values for every run (``dataset_dir``, switches...), except ``freeze_encoder`` and
            ``train_fraction``, which only the stage-3 runs get; ``archs``, ``crop``, ``lesion_source`` and
            ``inner_folds`` are required.
        stages: TATL stages to run (must include 3); ``1`` absent: no crop (whole images); ``2`` absent: stage 3
            starts from the encoder weights instead of the union network.
        prefix: put before every run name (the variant and fold of an experiment).
        pretext_only: stop after stage 2 (Figure 7 needs the union networks only).
        subset: ``attributes`` are some of the dataset's (Table 8): the cascade is assembled and scored on them
            only; stage 2 still learns the union of all.
    """
    if not set(stages) <= {1, 2, 3} or 3 not in stages:
        raise ValueError(f"stages must include 3 and be a subset of (1, 2, 3), got {list(stages)}.")
    given = {k: (as_bool(v, k) if k in SWITCHES else v) for k, v in overrides.items() if v is not None}
    crop = 1 in stages and given["crop"]
    archs = list(given["archs"])
    stage3 = {k: given[k] for k in STAGE3_ONLY if k in given}  # the attribute segmenters' encoders and data only
    common = {k: v for k, v in given.items() if k not in STAGE3_ONLY}
    common.update(fold=fold, models_dir=str(Path(run_dir) / "models"), output_dir=f"{run_dir}/eval")
    runs: list[BundleRun] = []

    def add(name: str, configs: Sequence[str], **values: object) -> None:  # needs the round's runs before it
        settings = {k: v for k, v in {**common, **values}.items() if v is not None}
        runs.append(BundleRun(prefix + name, ["common.json", *configs], settings, needs=[r.name for r in runs]))

    if crop:
        add("lesion", ["train_lesion.json"], max_epochs=epochs["lesion"])
        if given["lesion_source"] != "ground_truth":
            add("predict_lesion", ["predict_lesion.json"])
        if given["lesion_source"] == "inner_folds":
            for k in range(given["inner_folds"]):
                inner = {"lesion_holdout": k, "ckpt_dir": str(Path(run_dir) / "models" / "inner_lesion" / str(k))}
                add(f"lesion/inner{k}", ["train_lesion.json"], max_epochs=epochs["lesion"], **inner)
                add(f"predict_lesion/inner{k}", ["predict_lesion.json"], **inner)
    if 2 in stages:
        for arch in archs:
            add(f"union/{arch}", ["train_union.json"], arch=arch, max_epochs=epochs["union"], crop=crop)
    if pretext_only:
        return runs
    for name in attributes:
        for arch in archs:
            values = {"arch": arch, "attribute": name, "from_union": 2 in stages, "max_epochs": epochs["attribute"]}
            values.update(stage3)
            add(f"attribute/{name}/{arch}", ["train_attribute.json"], **values, crop=crop)
    only = {"attributes": list(attributes)} if subset else {}
    add("assemble", ["assemble.json"], crop=crop, output_dir=None, **only)
    label = run_label(stages, given)
    scoring = {"output_dir": f"{run_dir}/eval/cascade", "scores_dir": f"{run_dir}/eval", "run_label": label}
    add("evaluate", ["inference.json", "evaluate.json"], **scoring, **only)
    return runs
