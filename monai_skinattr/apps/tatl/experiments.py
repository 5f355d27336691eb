"""The paper's experiments as one command each: Tables 3/4, 5 and 6, Figures 4 and 5 (TATL §5).

Each experiment is a list of variants (stage sets and config overrides); every variant runs
:class:`~monai_skinattr.apps.tatl.workflow.TATLWorkflow` on the same folds, and the table gives mean ± std over folds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_skinattr.data import synthetic
from monai_skinattr.data.checks import read_2d
from monai_skinattr.metrics import isic_task2_score
from monai_skinattr.utils.io import write_table
from monai_skinattr.visualize import bar_chart, line_plot

from .data import split_datalists
from .report import summary_table
from .stability import stability_figure
from .workflow import TATLWorkflow, run_label

__all__ = ["EXPERIMENTS", "plan_experiment", "run_experiment", "pretext_scores"]

logger = logging.getLogger(__name__)

#: TATL's offsets are pixels of its 384-row Segment-Net grid; other grids scale them.
PAPER_ROWS = 384

#: name -> (title, [(stages, needs ImageNet weights, overrides)])
EXPERIMENTS: dict[str, tuple[str, list[tuple[tuple[int, ...], bool, dict]]]] = {
    "tatl": ("TATL", [((1, 2, 3), True, {})]),
    "table3": (
        "Table 3/4: stages",
        [((3,), True, {}), ((2, 3), True, {}), ((1, 3), True, {}), ((1, 2, 3), True, {}), ((1, 2, 3), False, {})],
    ),
    "table5": ("Table 5: lesion box offset", [((1, 2, 3), True, {"offset": o}) for o in (0, 20, 40, 60)]),
    "table6": (
        "Table 6: U, Link, U + Link",
        [((1, 2, 3), True, {"archs": a}) for a in (["unet"], ["linknet"], ["unet", "linknet"])],
    ),
    "figure4": (
        "Figure 4: training fraction",
        [((1, 2, 3), True, {"train_fraction": f}) for f in (1.0, 0.8, 0.6, 0.4)]
        + [((1, 2, 3), False, {"train_fraction": f}) for f in (1.0, 0.8, 0.6, 0.4)]
        + [((3,), True, {"train_fraction": f}) for f in (1.0, 0.8, 0.6, 0.4)],
    ),
    "figure5": ("Figure 5: pretext (union network) vs downstream (target segmenters)", [((1, 2, 3), True, {})]),
}


def _variant_label(name: str, stages: Sequence[int], variant: Mapping, extra: Mapping) -> str:
    label = run_label(stages, variant)
    suffix = "" if variant.get("encoder_weights") else " w/o ImageNet"
    if name == "table5":
        label = f"offset {extra['offset']}{suffix}"
    elif name == "table6":
        label = {1: "U only" if extra["archs"] == ["unet"] else "Link only", 2: "U + Link"}[
            len(extra["archs"])
        ] + suffix
    elif name == "figure4":
        label = f"{label} @ {int(round(100 * extra['train_fraction']))}%"
    return label


def pretext_scores(run_dir: str | Path, datalist: Sequence[dict], attributes: Sequence[str]) -> dict:
    """Figure 5's pretext column: the union map (stage 2, written by the cascade) scored as a prediction of each
    attribute, the ISIC Task 2 way."""
    union = Path(run_dir) / "eval" / "cascade" / "union"
    truths = {a: [read_2d(e[a]) for e in datalist] for a in attributes}
    preds = {a: [read_2d(union / f"{e['id']}_union.png") for e in datalist] for a in attributes}
    return isic_task2_score(truths, preds)


def plan_experiment(name: str, overrides: Mapping | None = None) -> list[tuple[str, tuple[int, ...], dict]]:
    """
    The runs of experiment ``name``: ``(label, stages, config overrides)`` each. ImageNet variants load
    ``overrides["encoder_weights"]``; without it they start from random weights and their labels say
    "w/o ImageNet" (variants that then coincide are run once). ``offset`` is in TATL's pixels of a 384-row grid
    (default 40) and is scaled to ``lesion_size``.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted([*EXPERIMENTS, 'figure7'])}, got '{name}'.")
    overrides = dict(overrides or {})
    weights = overrides.get("encoder_weights") or ""
    lesion_rows = list(overrides.get("lesion_size", [PAPER_ROWS]))[0]
    runs: dict[str, tuple[tuple[int, ...], dict]] = {}
    for stages, imagenet, extra in EXPERIMENTS[name][1]:
        variant = {**overrides, **extra, "encoder_weights": weights if imagenet else ""}
        variant["offset"] = round(variant.get("offset", 40) * lesion_rows / PAPER_ROWS)
        label = _variant_label(name, stages, variant, extra)
        runs.setdefault(label, (stages, variant))
    return [(label, stages, variant) for label, (stages, variant) in runs.items()]


def run_experiment(
    name: str,
    bundle_root: str | Path,
    workdir: str | Path,
    folds: Sequence[int] = (0, 1, 2, 3, 4),
    epochs: Mapping[str, int] | None = None,
    overrides: Mapping | None = None,
) -> str:
    """
    Run experiment ``name`` (a key of :data:`EXPERIMENTS`, or ``"figure7"``: :func:`stability_figure` on the first
    fold) on ``folds`` (the runs of :func:`plan_experiment`) and write its table (``table.md/.csv/.json``, plus
    ``figure.png`` for figures) under ``<workdir>/<name>/``. Returns the Markdown.

    .. code-block:: python

        print(run_experiment("table6", "bundles/tatl", "runs", folds=[0, 1], overrides={"spatial_size": [128, 160]}))
    """
    if name == "figure7":
        return stability_figure(bundle_root, workdir, folds[0], epochs, overrides)
    title = EXPERIMENTS[name][0]
    overrides = dict(overrides or {})
    out = Path(workdir) / name
    results: dict[str, list[dict]] = {}
    for label, stages, variant in plan_experiment(name, overrides):
        tag = label.replace(" ", "_").replace(",", "").replace("/", "").replace("%", "pct").replace("@", "at")
        workflow = TATLWorkflow(bundle_root, out / tag, stages=stages, epochs=epochs, overrides=variant)
        for fold in folds:
            scores = workflow.run_fold(fold)
            if name != "figure5":
                results.setdefault(label, []).append(scores)
                continue
            results.setdefault("downstream (target segmenters)", []).append(scores)
            split = (variant.get(k, d) for k, d in (("num_folds", 5), ("val_fraction", 0.2), ("seed", 0)))
            test = split_datalists(workflow.dataset(), fold, *split)["test"]
            attributes = [k for k in scores if k not in ("macro_average", "micro_average", "overall", "num_images")]
            pretext = pretext_scores(out / tag / f"fold{fold}", test, attributes)
            results.setdefault("pretext (union network)", []).append(pretext)
    markdown, rows, summary = summary_table(results, "jaccard", title)
    dice_markdown, dice_rows, dice_summary = summary_table(results, "dice", title)
    markdown += "\n" + dice_markdown
    rows += dice_rows[1:]
    summary = {"jaccard": summary, "dice": dice_summary}
    root = TATLWorkflow(bundle_root, out, overrides=overrides).dataset()
    kind = (
        "synthetic ISIC 2018 (monai_skinattr generator)" if synthetic.is_complete(root, "isic", "training") else "ISIC"
    )
    markdown += (
        f"\nData: {kind} at {root}. Scored: fold(s) {list(folds)} of {overrides.get('num_folds', 5)} of the training "
        "split, scored the official ISIC Task 2 way at the original size; checkpoints and early stopping on a "
        f"validation split carved from the other folds. Epochs: {json.dumps(epochs)}. "
        f"Settings: {json.dumps({k: v for k, v in overrides.items() if k != 'resume'}, default=str)}.\n"
    )
    if not overrides.get("encoder_weights"):
        markdown += "No ImageNet encoder_weights given: every column started from random weights (w/o ImageNet).\n"
    write_table(out, "table", markdown, rows[0], rows[1:], summary)
    _figure(name, summary["jaccard" if name == "figure4" else "dice"], out / "figure.png")
    return markdown


def _figure(name: str, summary: Mapping, path: Path) -> None:
    """Figure 4 as a line plot of macro Jaccard over training fractions (as the paper); Figure 5 as grouped bars of
    Dice (as the paper)."""
    if name == "figure4":
        series: dict[str, dict[float, float]] = {}
        for label, rows in summary.items():
            method, fraction = label.rsplit(" @ ", 1)
            series.setdefault(method, {})[float(fraction.rstrip("%"))] = rows["macro_average"][0]
        xs = sorted({x for s in series.values() for x in s}, reverse=True)
        line_plot(xs, {m: [s.get(x, float("nan")) for x in xs] for m, s in series.items()}, path,
                  title="TATL Figure 4", xlabel="training data (%)", ylabel="macro Jaccard")  # fmt: skip
    elif name == "figure5":
        rows = [r for r in next(iter(summary.values())) if r not in ("macro_average", "micro_average")]
        bar_chart({r: {label: summary[label][r][0] for label in summary} for r in rows}, path,
                  title="TATL Figure 5", ylabel="Dice")  # fmt: skip
