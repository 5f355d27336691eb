"""The paper's experiments as one command each: Tables 3/4, 5 and 6, Figures 4, 5 and 6 (TATL §5).

Each experiment is a list of variants (stage sets and config overrides); :func:`experiment_plan` makes it a plan on
the library stage runner (every variant's TATL rounds on the same folds), and its table gives mean ± std over folds.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache, partial
from pathlib import Path

import numpy as np

from monai_skinattr.config import as_bool
from monai_skinattr.data import synthetic
from monai_skinattr.data.images import read_mask
from monai_skinattr.metrics import isic_task2_score
from monai_skinattr.runner import Plan, bundle_setting, read_record
from monai_skinattr.utils.io import markdown_table, write_table
from monai_skinattr.visualize import bar_chart, line_panels

from .boxes import crop_box_agreement
from .data import attributes_of, check_lesion_source
from .report import summary_table
from .rounds import SWITCHES, round_runs, run_label
from .stability import stability_figure

__all__ = [
    "EXPERIMENTS",
    "SHARED_RUNS",
    "curves_table",
    "experiment_plan",
    "experiment_table",
    "experiment_variants",
    "grid_offset",
    "pretext_scores",
    "read_loss_curves",
    "round_folder",
    "BACKBONES",
]

#: TATL's offsets are pixels of its 384-row Segment-Net grid; other grids scale them.
PAPER_ROWS = 384
#: TATL's lesion-box offset (§5.4, the best of Table 5), in pixels of that grid
PAPER_OFFSET = 40

#: Tables 7-8's backbones (registered encoder names) and how the paper names them
BACKBONES = {
    "vgg16": "VGG16",
    "resnet152": "ResNet-152",
    "inceptionresnetv2": "Inception-ResNet-v2",
    "densenet169": "DenseNet-169",
    "efficientnet-b0": "EfficientNet-b0",
}
#: Table 6's single-backbone baselines (the ISIC 2018 winner's backbones and EfficientNet-b0)
TABLE6_BACKBONES = ("resnet152", "inceptionresnetv2", "densenet169", "efficientnet-b0")
#: experiments scored on some attributes only (Table 8: the two with the fewest training images)
SCORED_ATTRIBUTES = {"table8": ("negative_network", "streaks")}
_SHAPES = {"unet": "U", "linknet": "Link"}

#: name -> (title, [(stages, needs ImageNet weights, overrides)])
EXPERIMENTS: dict[str, tuple[str, list[tuple[tuple[int, ...], bool, dict]]]] = {
    "tatl": ("TATL", [((1, 2, 3), True, {})]),
    "table3": (
        "Table 3/4: stages",
        [((3,), True, {}), ((2, 3), True, {}), ((1, 3), True, {}), ((1, 2, 3), True, {}), ((1, 2, 3), False, {})],
    ),
    "table5": ("Table 5: lesion box offset", [((1, 2, 3), True, {"paper_offset": o}) for o in (0, 20, 40, 60)]),
    "table6": (
        "Table 6: single-backbone U-Nets from ImageNet (ISIC 2018 1st's backbones), U-Eff and L-Eff (TATL)",
        [((3,), True, {"encoder": e, "archs": ["unet"], "crop": False}) for e in TABLE6_BACKBONES]
        + [((1, 2, 3), True, {"archs": a}) for a in (["unet"], ["linknet"], ["unet", "linknet"])],
    ),
    "table8": (
        "Table 8: backbones x shapes x TATL (FE) / TATL (NF) / ImageNet, negative network and streaks",
        [
            variant
            for e in BACKBONES
            for a in ("unet", "linknet")
            for variant in (
                ((1, 2, 3), True, {"encoder": e, "archs": [a], "freeze_encoder": True}),
                ((1, 2, 3), True, {"encoder": e, "archs": [a], "freeze_encoder": False}),
                ((1, 3), True, {"encoder": e, "archs": [a]}),
            )
        ],
    ),
    "figure4": (
        "Figure 4: training fraction",
        [((1, 2, 3), True, {"train_fraction": f}) for f in (1.0, 0.8, 0.6, 0.4)]
        + [((1, 2, 3), False, {"train_fraction": f}) for f in (1.0, 0.8, 0.6, 0.4)]
        + [((3,), True, {"train_fraction": f}) for f in (1.0, 0.8, 0.6, 0.4)],
    ),
    "figure5": ("Figure 5: pretext (union network) vs downstream (target segmenters)", [((1, 2, 3), True, {})]),
    "figure6": ("Figure 6: training and validation loss of the target segmenters", [((1, 2, 3), True, {})]),
    "lesion_sources": (
        "Where the training crops' lesions come from (not a paper table: the choice of lesion_source)",
        [((1, 2, 3), True, {"lesion_source": s, "lesion_dataset_dir": ""}) for s in ("ground_truth", "segment_net")]
        + [((1, 2, 3), True, {"lesion_source": "inner_folds", "lesion_dataset_dir": ""})]
        + [((1, 2, 3), True, {"lesion_source": "segment_net"})],  # with lesion_dataset_dir: the paper's way
    ),
}
#: experiments that draw from another experiment's runs (the same runs, trained once): name -> that experiment
SHARED_RUNS = {"figure5": "tatl", "figure6": "tatl"}


def _variant_label(name: str, stages: Sequence[int], variant: Mapping, extra: Mapping) -> str:
    label = run_label(stages, variant)
    suffix = "" if variant.get("encoder_weights") else " w/o ImageNet"
    if name == "table5":
        label = f"offset {extra['paper_offset']}{suffix}"
    elif name == "table6" and "encoder" in extra:
        label = f"{BACKBONES[extra['encoder']]} U, Stage 3{suffix}"
    elif name == "table6":
        label = {1: "U-Eff (TATL)" if extra["archs"] == ["unet"] else "L-Eff (TATL)", 2: "U + L-Eff (TATL)"}[
            len(extra["archs"])
        ] + suffix
    elif name == "table8":
        mode = "Stage 1,3" if 2 not in stages else "TATL (FE)" if extra["freeze_encoder"] else "TATL (NF)"
        if mode == "Stage 1,3" and not suffix:
            mode = "ImageNet"
        label = f"{BACKBONES[extra['encoder']]} {_SHAPES[extra['archs'][0]]} {mode}{suffix}"
    elif name == "figure4":
        label = f"{label} @ {int(round(100 * extra['train_fraction']))}%"
    return label


def pretext_scores(run_dir: str | Path, datalist: Sequence[dict], attributes: Sequence[str]) -> dict:
    """Figure 5's pretext column: the union map (stage 2, written by the cascade) scored as a prediction of each
    attribute, the ISIC Task 2 way."""
    union = Path(run_dir) / "eval" / "cascade" / "union"
    truths = {a: [read_mask(e[a]) for e in datalist] for a in attributes}
    preds = {a: [read_mask(union / f"{e['id']}_union.png") for e in datalist] for a in attributes}
    return isic_task2_score(truths, preds)


def experiment_variants(
    name: str, overrides: Mapping | None = None, lesion_rows: int = PAPER_ROWS
) -> list[tuple[str, tuple[int, ...], dict]]:
    """
    The variants of experiment ``name``: ``(label, stages, config overrides)`` each. ImageNet variants load
    ``overrides["encoder_weights"]`` for the bundle's encoder and ``overrides["imagenet_weights"][<encoder>]`` for
    the other backbones of Tables 6 and 8 (``overrides["backbones"]`` chooses them, and ``overrides["archs"]`` their
    shapes); without a file they start from random weights and their labels say "w/o ImageNet" (variants that then
    coincide are run once). ``paper_offset`` (default 40) is in TATL's pixels of
    its 384-row Segment-Net grid; each variant's ``offset`` (pixels of the ``lesion_rows``-row grid of its
    ``lesion_size``) is scaled from it.

    .. code-block:: python

        settings = {"encoder_weights": "w.pth", "backbones": ["resnet152"]}
        [label for label, _, _ in experiment_variants("table6", settings)]
        # ['ResNet-152 U, Stage 3 w/o ImageNet', 'U-Eff (TATL)', 'L-Eff (TATL)', 'U + L-Eff (TATL)']
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted([*EXPERIMENTS, 'figure7'])}, got '{name}'.")
    overrides = dict(overrides or {})
    files = {overrides.get("encoder", "efficientnet-b0"): overrides.get("encoder_weights") or ""}
    files.update(overrides.pop("imagenet_weights", None) or {})
    backbones = _backbones(name, overrides.pop("backbones", None))
    if name in ("table6", "table8"):
        _check_protocol(name, overrides)
    if name == "lesion_sources" and not as_bool(overrides.get("crop", True), "crop"):
        raise ValueError("'lesion_sources' compares where the crops' lesions come from; 'crop' false cuts no crop.")
    shapes = overrides.get("archs")
    runs: dict[str, tuple[tuple[int, ...], dict]] = {}
    for stages, imagenet, extra in EXPERIMENTS[name][1]:
        backbone = "encoder" in extra  # a variant of Table 6 or 8: its backbone and shape are chosen
        if backbone and (extra["encoder"] not in backbones or not set(extra["archs"]) <= set(shapes or extra["archs"])):
            continue
        encoder = extra.get("encoder", overrides.get("encoder", "efficientnet-b0"))
        variant = {**overrides, **extra, "encoder_weights": files.get(encoder, "") if imagenet else ""}
        source = variant.get("lesion_source", "inner_folds")
        check_lesion_source(source, variant.get("inner_folds", 5), variant.get("lesion_dataset_dir", ""))
        variant["offset"] = grid_offset(variant.pop("paper_offset", PAPER_OFFSET), lesion_rows)
        label = _variant_label(name, stages, variant, extra)
        runs.setdefault(label, (stages, variant))
    return [(label, stages, variant) for label, (stages, variant) in runs.items()]


def _backbones(name: str, backbones: Sequence[str] | None) -> list[str]:
    """The backbones an experiment runs: ``backbones`` (Tables 6 and 8 only, each one of that table's), else all."""
    own = list(TABLE6_BACKBONES if name == "table6" else BACKBONES)
    if backbones is None:
        return own
    if name not in ("table6", "table8"):
        raise ValueError(f"'backbones' chooses the backbones of table6 and table8, not of '{name}'.")
    if isinstance(backbones, str) or not backbones or any(b not in own for b in backbones):
        raise ValueError(f"'backbones' of {name} must be a non-empty list of {own}, got {backbones!r}.")
    return list(backbones)


#: the switches Tables 6 and 8 set per column themselves (any other value would change what their labels say)
_PROTOCOL = {"crop": True, "augment": False, "freeze_encoder": False}


def _set_by_variants(name: str) -> set[str]:
    """The settings every variant of experiment ``name`` sets itself but ``archs`` (Tables 6 and 8: a choice)."""
    return set.intersection(*(set(extra) for _, _, extra in EXPERIMENTS[name][1])) - {"archs"}


def _check_not_set_by_variants(name: str, overrides: Mapping, bundle_root: str | Path) -> None:
    """Refuse a setting that every variant of ``name`` sets itself (it would be silently replaced) at a value other
    than its default (the bundle's); ``archs`` chooses the shapes of Tables 6 and 8 instead."""
    for key in sorted(_set_by_variants(name) & set(overrides)):
        default = PAPER_OFFSET if key == "paper_offset" else bundle_setting(bundle_root, key)
        if overrides[key] != default:
            raise ValueError(f"'{name}' sets '{key}' per column itself; remove '{key}' {overrides[key]!r}.")


def _check_protocol(name: str, overrides: Mapping) -> None:
    """Tables 6 and 8 run the paper's protocol: refuse a switch that would make a column other than its label."""
    for key, paper in _PROTOCOL.items():
        if key in overrides and as_bool(overrides[key], key) != paper:
            raise ValueError(
                f"'{name}' runs the paper's protocol and names its columns by it; '{key}' {overrides[key]!r} would "
                f"change what they ran (its columns set freeze_encoder themselves). Leave '{key}' at {paper}."
            )
    if overrides.get("lesion_source") == "ground_truth":
        raise ValueError(f"'{name}' runs the paper's protocol, whose crops come from a Segment-Net; 'lesion_source' "
                         "'ground_truth' would change what its columns ran.")  # fmt: skip


def grid_offset(paper_offset: object, lesion_rows: int) -> int:
    """TATL's lesion-box offset in pixels of its 384-row grid, as pixels of a ``lesion_rows``-row grid; a negative
    or non-integer offset is an error naming ``paper_offset``."""
    if isinstance(paper_offset, bool) or not isinstance(paper_offset, int) or paper_offset < 0:
        raise ValueError(f"'paper_offset' must be an integer >= 0 (pixels of a 384-row grid), got {paper_offset!r}.")
    return round(paper_offset * lesion_rows / PAPER_ROWS)


def _tag(label: str) -> str:
    """A variant's folder name."""
    return label.replace(" ", "_").replace(",", "").replace("/", "").replace("%", "pct").replace("@", "at")


def _rounds(folds: Sequence[int], reruns: int) -> list[tuple[int, int]]:
    """Every ``(fold, rerun)`` a plan runs, in its order."""
    return [(fold, rerun) for fold in folds for rerun in range(reruns)]


def round_folder(label: str, fold: int, rerun: int = 0) -> str:
    """Where a variant's round of ``fold`` runs: ``<variant>/fold<k>``, or ``<variant>/fold<k>_rerun<r>``."""
    return f"{_tag(label)}/fold{fold}" + (f"_rerun{rerun}" if rerun else "")


def experiment_plan(
    name: str,
    bundle_root: str | Path,
    workdir: str | Path,
    folds: Sequence[int] = (0, 1, 2, 3, 4),
    epochs: Mapping[str, int] | None = None,
    overrides: Mapping | None = None,
    figure7: Mapping | None = None,
    reruns: int = 1,
) -> Plan:
    """
    Experiment ``name`` (a key of :data:`EXPERIMENTS`, or ``"figure7"``) as a plan on the library stage runner:
    every variant of :func:`experiment_variants` on every fold of ``folds`` (the runs of :func:`round_runs`, named
    ``<variant>/fold<k>/<stage>``), recorded in ``<workdir>/<name>/runs.json`` (Figure 6 draws from the finished
    runs of the ``tatl`` experiment, :data:`SHARED_RUNS`, and refuses to start without them: it trains nothing);
    its table step writes
    ``table.md/.csv/.json`` (plus ``figure.png`` for figures) under ``<workdir>/<name>/`` and returns the Markdown.
    ``"figure7"`` trains stages 1–2 of the first fold and computes :func:`stability_figure` (``figure7``: its
    keyword arguments, e.g. ``{"max_samples": 8}``). With ``reruns`` > 1 every fold runs that many times, rerun
    ``r`` in ``fold<k>_rerun<r>`` with ``init_seed`` = ``seed`` + ``r`` (other initial weights, shuffling and
    augmentation; the same folds and validation split), and the table is over folds and reruns (Table 8: 3).

    .. code-block:: python

        plan = experiment_plan("table6", "bundles/tatl", "runs", folds=[0, 1], overrides={"spatial_size": [128, 160]})
        print(run_plan(plan))

    Args:
        name: the experiment.
        bundle_root: the TATL bundle.
        workdir: the experiments' folder.
        folds: the scored folds.
        epochs: maximum epochs per stage, ``{"lesion", "union", "attribute"}`` (40 each when absent).
        overrides: config values for every run; what is absent comes from the bundle's ``common.json``. Plan-level
            keys: ``imagenet_weights`` (``{encoder: local ImageNet file}``) and ``backbones`` (Tables 6 and 8).
        reruns: runs of every fold, each with its own initialisation seed.
    """
    epochs = {"lesion": 40, "union": 40, "attribute": 40, **(epochs or {})}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if name in EXPERIMENTS:
        _check_not_set_by_variants(name, overrides, bundle_root)
    stage_overrides = {k: v for k, v in overrides.items() if k not in ("imagenet_weights", "backbones")}
    for key in ("archs", "crop", "lesion_source", "inner_folds"):  # what shapes the runs: the configs' defaults
        overrides.setdefault(key, bundle_setting(bundle_root, key, stage_overrides))
    experiment_variants("tatl" if name == "figure7" else name, overrides)  # by name, before any data is touched
    if isinstance(reruns, bool) or not isinstance(reruns, int) or reruns < 1:
        raise ValueError(f"'reruns' must be an integer >= 1, got {reruns!r}.")
    for switch in SWITCHES:
        as_bool(overrides.get(switch, False), switch)
    if "offset" in overrides:
        raise ValueError("an experiment's lesion-box offset is 'paper_offset' (pixels of TATL's 384-row grid, scaled "
                         f"to lesion_size), not 'offset' (got offset={overrides['offset']!r}).")  # fmt: skip
    out = Path(workdir) / name
    data_root = bundle_setting(bundle_root, "data_root", stage_overrides)
    attributes = attributes_of(data_root)
    scored = [a for a in attributes if a in SCORED_ATTRIBUTES.get(name, attributes)]
    if not scored:
        raise ValueError(f"'{name}' scores {list(SCORED_ATTRIBUTES[name])}, which {data_root} does not have.")
    lesion_rows = bundle_setting(bundle_root, "lesion_size", stage_overrides)[0]
    seed = bundle_setting(bundle_root, "seed", stage_overrides)
    if name == "figure7":
        (_, stages, variant), fold = experiment_variants("tatl", overrides, lesion_rows)[0], folds[0]
        runs = round_runs(out / f"fold{fold}", fold, attributes, epochs, {**variant, "dataset_dir": data_root},
                          stages, pretext_only=True)  # fmt: skip
        table = partial(stability_figure, bundle_root, out, fold, {**variant, "dataset_dir": data_root},
                        **dict(figure7 or {}))  # fmt: skip
        return Plan(bundle_root, out, runs, table)
    variants = experiment_variants(name, overrides, lesion_rows)
    runs_dir = Path(workdir) / SHARED_RUNS.get(name, name)
    runs = []
    for label, stages, variant in variants:
        for fold, rerun in _rounds(folds, reruns):
            rel = round_folder(label, fold, rerun)
            values = {**variant, "dataset_dir": data_root, "init_seed": seed + rerun if rerun else None}
            runs += round_runs(runs_dir / rel, fold, scored, epochs, values, stages, f"{rel}/",
                               subset=scored != attributes)  # fmt: skip
    step = curves_table if name == "figure6" else experiment_table
    table = partial(step, name, bundle_root, out, variants, folds, data_root, epochs, overrides, runs_dir, reruns)
    if name in SHARED_RUNS:  # draws from another experiment's finished runs; runs and records nothing itself
        _check_finished(runs, runs_dir, name)
        return Plan(bundle_root, out, [], table)
    return Plan(bundle_root, runs_dir, runs, table)


def _check_finished(runs: Sequence, runs_dir: Path, name: str) -> None:
    """Refuse ``name`` unless every run it draws from is recorded in ``runs_dir`` as finished with the same
    settings (it would otherwise train into, and rewrite the record of, another experiment)."""
    record = read_record(runs_dir)
    missing = [
        r.name for r in runs if not record.get(r.name, {}).get("finished") or record[r.name]["settings"] != r.settings()
    ]
    if missing:
        raise ValueError(
            f"'{name}' draws from the runs of --experiment {SHARED_RUNS[name]} in {runs_dir}, and {len(missing)} of "
            f"them are not finished with these settings (e.g. {missing[:2]}): run --experiment {SHARED_RUNS[name]} "
            "with the same settings first."
        )


def experiment_table(
    name: str,
    bundle_root: str | Path,
    out: Path,
    variants: Sequence[tuple[str, tuple[int, ...], dict]],
    folds: Sequence[int],
    data_root: str,
    epochs: Mapping[str, int],
    overrides: Mapping,
    runs_dir: Path | None = None,
    reruns: int = 1,
) -> str:
    """The table step of :func:`experiment_plan`: each variant's ISIC Task 2 scores over ``folds`` and their
    ``reruns`` (mean ± std),
    Jaccard then Dice, labelled with the data, folds, epochs and settings that ran; Figure 5 adds the pretext
    scores of the union network. Writes ``<out>/table.md/.csv/.json`` (and ``figure.png``)."""
    title = EXPERIMENTS[name][0]
    results: dict[str, list[dict]] = {}
    boxes: dict[str, list[dict]] = {}
    lesion_size = bundle_setting(bundle_root, "lesion_size", overrides)

    @cache
    def split(fold: int) -> dict[str, list[dict]]:  # a round's datalists, read once (every variant splits alike)
        return bundle_setting(bundle_root, "datalists", {**variants[0][2], "dataset_dir": data_root, "fold": fold})

    for label, _, variant in variants:
        for fold, rerun in _rounds(folds, reruns):
            run_dir = (runs_dir or out) / round_folder(label, fold, rerun)
            scores = json.loads((run_dir / "eval" / "attribute_scores.json").read_text())
            if name == "lesion_sources":
                predicted = variant["lesion_source"] != "ground_truth"
                agreement = crop_box_agreement(run_dir, split(fold)["training"], split(fold)["test"], lesion_size,
                                               variant["offset"], predicted)  # fmt: skip
                boxes.setdefault(label, []).append(agreement)
            if name != "figure5":
                results.setdefault(label, []).append(scores)
                continue
            results.setdefault("downstream (target segmenters)", []).append(scores)
            test = split(fold)["test"]
            attributes = [k for k in scores if k not in ("macro_average", "micro_average", "overall", "num_images")]
            results.setdefault("pretext (union network)", []).append(pretext_scores(run_dir, test, attributes))
    unit = "fold(s)" if reruns == 1 else "round(s): folds x reruns"
    markdown, rows, summary = summary_table(results, "jaccard", title, unit)
    dice_markdown, dice_rows, dice_summary = summary_table(results, "dice", title, unit)
    markdown += "\n" + dice_markdown
    rows += dice_rows[1:]
    summary = {"jaccard": summary, "dice": dice_summary}
    if boxes:
        markdown += "\n" + _box_table(boxes, summary)
    shared = {k: v for k, v in overrides.items() if k not in _set_by_variants(name)}  # the rest: in the labels
    markdown += _provenance(bundle_root, data_root, folds, epochs, shared, reruns)
    write_table(out, "table", markdown, rows[0], rows[1:], summary)
    _figure(name, summary["jaccard" if name == "figure4" else "dice"], out / "figure.png")
    return markdown


def _box_table(boxes: Mapping[str, list[dict]], summary: dict) -> str:
    """The ``lesion_sources`` box table: per variant, the mean box IoU with the ground truth of its training crops
    and of its scored photos' crops, mean ± std over rounds (added to ``summary["box_iou"]``)."""
    columns = {"training": "training crops' box IoU", "scored": "scored photos' box IoU"}
    cells, summary["box_iou"] = [], {}
    for label, rounds in boxes.items():
        row = [label]
        for key in columns:
            v = np.array([r[key] for r in rounds])
            std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            summary["box_iou"].setdefault(label, {})[key] = [float(v.mean()), std, len(v)]
            row.append(f"{v.mean():.3f} ± {std:.3f}")
        cells.append(row)
    text = "**Lesion boxes**: IoU of each box TATL cuts with the ground-truth lesion's box (same offset, lesion grid)"
    return text + "\n\n" + markdown_table(["run", *columns.values()], cells)


def _provenance(
    bundle_root: str | Path,
    data_root: str,
    folds: Sequence[int],
    epochs: Mapping[str, int],
    overrides: Mapping,
    reruns: int = 1,
) -> str:
    """What a table was computed from: the data, the scored folds and reruns, the epochs and the settings that ran."""
    num_folds = bundle_setting(bundle_root, "num_folds", overrides)
    kind = (
        "synthetic ISIC 2018 (monai_skinattr generator)"
        if synthetic.is_complete(data_root, "isic", "training")
        else "ISIC"
    )
    text = (
        f"\nData: {kind} at {data_root}. Scored: fold(s) {list(folds)} of {num_folds} of the "
        f"training split{f', each run {reruns} times (init_seed = seed + rerun)' if reruns > 1 else ''}, "
        "scored the official ISIC Task 2 way at the original size; checkpoints and early stopping on "
        f"a validation split carved from the other folds. Epochs: {json.dumps(dict(epochs))}. "
        f"Settings: {json.dumps(dict(overrides), default=str)}.\n"
    )
    if not overrides.get("encoder_weights") and not overrides.get("imagenet_weights"):
        text += "No ImageNet encoder_weights given: every column started from random weights (w/o ImageNet).\n"
    return text


def read_loss_curves(path: str | Path) -> dict[str, list[float]]:
    """A stage's ``loss_curves.csv`` (``monai_skinattr.handlers.LossCurves``) as ``{column: values}``."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no epoch recorded.")
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def curves_table(
    name: str,
    bundle_root: str | Path,
    out: Path,
    variants: Sequence[tuple[str, tuple[int, ...], dict]],
    folds: Sequence[int],
    data_root: str,
    epochs: Mapping[str, int],
    overrides: Mapping,
    runs_dir: Path | None = None,
    reruns: int = 1,
) -> str:
    """
    Figure 6's table step: per attribute and shape, each target segmenter's training loss (mean over its last
    epoch), its best validation loss and the training step it was reached at, mean ± std over ``folds`` and their
    ``reruns``, from the
    ``loss_curves.csv`` every stage writes under ``eval/curves/``; ``figure.png`` plots one panel per attribute,
    training and validation loss against training steps (epochs x steps per epoch) of the first fold. Writes
    ``<out>/table.md/.csv/.json`` and returns the Markdown.
    """
    label, _, variant = variants[0]
    attributes = attributes_of(data_root)
    archs = list(variant["archs"])
    values: dict[tuple[str, str], list[list[float]]] = {}
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    batches: set[int] = set()  # batches per epoch of each round (its own training photos)
    for fold, rerun in _rounds(folds, reruns):
        run_dir = (runs_dir or out) / round_folder(label, fold, rerun)
        settings = {**variant, "dataset_dir": data_root, "fold": fold}
        training = bundle_setting(bundle_root, "datalists", settings)["training"]
        per_epoch = math.ceil(len(training) / bundle_setting(bundle_root, "batch_size", settings))
        batches.add(per_epoch)
        for attribute in attributes:
            for arch in archs:
                curve = read_loss_curves(
                    run_dir / "eval" / "curves" / "attributes" / attribute / arch / "loss_curves.csv"
                )
                steps = [e * per_epoch for e in curve["epoch"]]
                best = min(range(len(steps)), key=lambda i: curve["val_loss"][i])
                values.setdefault((attribute, arch), []).append(
                    [curve["train_loss"][-1], curve["val_loss"][best], steps[best]]
                )
                if (fold, rerun) == (folds[0], 0):
                    shape = _SHAPES.get(arch, arch)
                    panels.setdefault(attribute, {})[f"{shape} training"] = (steps, curve["train_loss"])
                    panels[attribute][f"{shape} validation"] = (steps, curve["val_loss"])
    columns = ["training loss (last epoch)", "validation loss (best)", "step of the best validation loss"]
    header = ["attribute", "shape", *columns]
    cells, csv_rows, summary = [], [["attribute", "shape", *[f"{c} {s}" for c in columns for s in ("mean", "std")]]], {}
    for (attribute, arch), runs in values.items():
        v = np.array(runs, dtype=float)
        mean, std = v.mean(axis=0), (v.std(axis=0, ddof=1) if len(v) > 1 else np.zeros(v.shape[1]))
        cells.append([attribute, arch, *[f"{m:.4f} ± {d:.4f}" for m, d in zip(mean, std, strict=True)]])
        csv_rows.append([attribute, arch, *[f"{x:.6f}" for pair in zip(mean, std, strict=True) for x in pair]])
        summary.setdefault(attribute, {})[arch] = {
            c: [float(m), float(d), len(v)] for c, m, d in zip(columns, mean, std, strict=True)
        }
    title = EXPERIMENTS[name][0]
    per_round = str(batches.pop()) if len(batches) == 1 else "each round's"
    markdown = f"**{title}** ({label}, mean ± std over {len(folds) * reruns} round(s); steps: epochs x {per_round} "
    markdown += "batches)\n\n" + markdown_table(header, cells)
    markdown += _provenance(bundle_root, data_root, folds, epochs, overrides, reruns)
    write_table(out, "table", markdown, csv_rows[0], csv_rows[1:], summary)
    line_panels(panels, out / "figure.png", title=f"TATL Figure 6 ({label}, fold {folds[0]})",
                xlabel="training steps", ylabel="loss")  # fmt: skip
    return markdown


def _figure(name: str, summary: Mapping, path: Path) -> Path | None:
    """Figure 4 as one panel per attribute (and one of the macro average) of Jaccard over the target segmenters'
    training fraction, a line per method (as the paper); Figure 5 as grouped bars of Dice (as the paper)."""
    if name == "figure4":
        panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        for label, rows in summary.items():
            method, fraction = label.rsplit(" @ ", 1)
            for row, (mean, *_) in rows.items():
                if row != "micro_average":
                    xs, ys = panels.setdefault(row, {}).setdefault(method, ([], []))
                    xs.append(float(fraction.rstrip("%")))
                    ys.append(mean)
        return line_panels(panels, path, title="TATL Figure 4", xlabel="target segmenters' training data (%)",
                           ylabel="Jaccard")  # fmt: skip
    elif name == "figure5":
        rows = [r for r in next(iter(summary.values())) if r not in ("macro_average", "micro_average")]
        return bar_chart({r: {label: summary[label][r][0] for label in summary} for r in rows}, path,
                         title="TATL Figure 5", ylabel="Dice")  # fmt: skip
    return None
