"""The paper's experiments as one command each: Tables 3/4, 5 and 6, Figures 4 and 5 (TATL §5).

Each experiment is a list of variants (stage sets and config overrides); :func:`experiment_plan` makes it a plan on
the library stage runner (every variant's TATL rounds on the same folds), and its table gives mean ± std over folds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

from monai_skinattr.config import as_bool
from monai_skinattr.data import synthetic
from monai_skinattr.data.images import read_mask
from monai_skinattr.metrics import isic_task2_score
from monai_skinattr.runner import Plan, bundle_setting
from monai_skinattr.utils.io import write_table
from monai_skinattr.visualize import bar_chart, line_plot

from .data import attributes_of
from .report import summary_table
from .rounds import SWITCHES, round_runs, run_label
from .stability import stability_figure

__all__ = ["EXPERIMENTS", "experiment_plan", "experiment_table", "experiment_variants", "grid_offset", "pretext_scores"]

#: TATL's offsets are pixels of its 384-row Segment-Net grid; other grids scale them.
PAPER_ROWS = 384
#: TATL's lesion-box offset (§5.4, the best of Table 5), in pixels of that grid
PAPER_OFFSET = 40

#: name -> (title, [(stages, needs ImageNet weights, overrides)])
EXPERIMENTS: dict[str, tuple[str, list[tuple[tuple[int, ...], bool, dict]]]] = {
    "tatl": ("TATL", [((1, 2, 3), True, {})]),
    "table3": (
        "Table 3/4: stages",
        [((3,), True, {}), ((2, 3), True, {}), ((1, 3), True, {}), ((1, 2, 3), True, {}), ((1, 2, 3), False, {})],
    ),
    "table5": ("Table 5: lesion box offset", [((1, 2, 3), True, {"paper_offset": o}) for o in (0, 20, 40, 60)]),
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
        label = f"offset {extra['paper_offset']}{suffix}"
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
    truths = {a: [read_mask(e[a]) for e in datalist] for a in attributes}
    preds = {a: [read_mask(union / f"{e['id']}_union.png") for e in datalist] for a in attributes}
    return isic_task2_score(truths, preds)


def experiment_variants(
    name: str, overrides: Mapping | None = None, lesion_rows: int = PAPER_ROWS
) -> list[tuple[str, tuple[int, ...], dict]]:
    """
    The variants of experiment ``name``: ``(label, stages, config overrides)`` each. ImageNet variants load
    ``overrides["encoder_weights"]``; without it they start from random weights and their labels say
    "w/o ImageNet" (variants that then coincide are run once). ``paper_offset`` (default 40) is in TATL's pixels of
    its 384-row Segment-Net grid; each variant's ``offset`` (pixels of the ``lesion_rows``-row grid of its
    ``lesion_size``) is scaled from it.

    .. code-block:: python

        [label for label, _, _ in experiment_variants("table6", {"encoder_weights": "w.pth"})]
        # ['U only', 'Link only', 'U + Link']
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted([*EXPERIMENTS, 'figure7'])}, got '{name}'.")
    overrides = dict(overrides or {})
    weights = overrides.get("encoder_weights") or ""
    runs: dict[str, tuple[tuple[int, ...], dict]] = {}
    for stages, imagenet, extra in EXPERIMENTS[name][1]:
        variant = {**overrides, **extra, "encoder_weights": weights if imagenet else ""}
        variant["offset"] = grid_offset(variant.pop("paper_offset", PAPER_OFFSET), lesion_rows)
        label = _variant_label(name, stages, variant, extra)
        runs.setdefault(label, (stages, variant))
    return [(label, stages, variant) for label, (stages, variant) in runs.items()]


def grid_offset(paper_offset: object, lesion_rows: int) -> int:
    """TATL's lesion-box offset in pixels of its 384-row grid, as pixels of a ``lesion_rows``-row grid; a negative
    or non-integer offset is an error naming ``paper_offset``."""
    if isinstance(paper_offset, bool) or not isinstance(paper_offset, int) or paper_offset < 0:
        raise ValueError(f"'paper_offset' must be an integer >= 0 (pixels of a 384-row grid), got {paper_offset!r}.")
    return round(paper_offset * lesion_rows / PAPER_ROWS)


def _tag(label: str) -> str:
    """A variant's folder name."""
    return label.replace(" ", "_").replace(",", "").replace("/", "").replace("%", "pct").replace("@", "at")


def experiment_plan(
    name: str,
    bundle_root: str | Path,
    workdir: str | Path,
    folds: Sequence[int] = (0, 1, 2, 3, 4),
    epochs: Mapping[str, int] | None = None,
    overrides: Mapping | None = None,
    figure7: Mapping | None = None,
) -> Plan:
    """
    Experiment ``name`` (a key of :data:`EXPERIMENTS`, or ``"figure7"``) as a plan on the library stage runner:
    every variant of :func:`experiment_variants` on every fold of ``folds`` (the runs of :func:`round_runs`, named
    ``<variant>/fold<k>/<stage>``), recorded in ``<workdir>/<name>/runs.json``; its table step writes
    ``table.md/.csv/.json`` (plus ``figure.png`` for figures) under ``<workdir>/<name>/`` and returns the Markdown.
    ``"figure7"`` trains stages 1–2 of the first fold and computes :func:`stability_figure` (``figure7``: its
    keyword arguments, e.g. ``{"max_samples": 8}``).

    .. code-block:: python

        plan = experiment_plan("table6", "bundles/tatl", "runs", folds=[0, 1], overrides={"spatial_size": [128, 160]})
        print(run_plan(plan))

    Args:
        name: the experiment.
        bundle_root: the TATL bundle.
        workdir: the experiments' folder.
        folds: the scored folds.
        epochs: maximum epochs per stage, ``{"lesion", "union", "attribute"}`` (40 each when absent).
        overrides: config values for every run; what is absent comes from the bundle's ``common.json``.
    """
    epochs = {"lesion": 40, "union": 40, "attribute": 40, **(epochs or {})}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    experiment_variants("tatl" if name == "figure7" else name, {})  # refused by name before any data is touched
    for switch in SWITCHES:
        as_bool(overrides.get(switch, False), switch)
    if "offset" in overrides:
        raise ValueError("an experiment's lesion-box offset is 'paper_offset' (pixels of TATL's 384-row grid, scaled "
                         f"to lesion_size), not 'offset' (got offset={overrides['offset']!r}).")  # fmt: skip
    out = Path(workdir) / name
    data_root = bundle_setting(bundle_root, "data_root", overrides)
    attributes = attributes_of(data_root)
    lesion_rows = bundle_setting(bundle_root, "lesion_size", overrides)[0]
    for key in ("archs", "crop"):  # what shapes the runs: the stage configs' own defaults unless given
        overrides.setdefault(key, bundle_setting(bundle_root, key, overrides))
    if name == "figure7":
        (_, stages, variant), fold = experiment_variants("tatl", overrides, lesion_rows)[0], folds[0]
        runs = round_runs(out / f"fold{fold}", fold, attributes, epochs, {**variant, "dataset_dir": data_root},
                          stages, pretext_only=True)  # fmt: skip
        table = partial(stability_figure, bundle_root, out, fold, {**variant, "dataset_dir": data_root},
                        **dict(figure7 or {}))  # fmt: skip
        return Plan(bundle_root, out, runs, table)
    variants = experiment_variants(name, overrides, lesion_rows)
    runs = []
    for label, stages, variant in variants:
        for fold in folds:
            run_dir, prefix = out / _tag(label) / f"fold{fold}", f"{_tag(label)}/fold{fold}/"
            variant_runs = round_runs(run_dir, fold, attributes, epochs, {**variant, "dataset_dir": data_root},
                                      stages, prefix)  # fmt: skip
            runs += variant_runs
    table = partial(experiment_table, name, bundle_root, out, variants, folds, data_root, epochs, overrides)
    return Plan(bundle_root, out, runs, table)


def experiment_table(
    name: str,
    bundle_root: str | Path,
    out: Path,
    variants: Sequence[tuple[str, tuple[int, ...], dict]],
    folds: Sequence[int],
    data_root: str,
    epochs: Mapping[str, int],
    overrides: Mapping,
) -> str:
    """The table step of :func:`experiment_plan`: each variant's ISIC Task 2 scores over ``folds`` (mean ± std),
    Jaccard then Dice, labelled with the data, folds, epochs and settings that ran; Figure 5 adds the pretext
    scores of the union network. Writes ``<out>/table.md/.csv/.json`` (and ``figure.png``)."""
    title = EXPERIMENTS[name][0]
    results: dict[str, list[dict]] = {}
    for label, _, variant in variants:
        for fold in folds:
            run_dir = out / _tag(label) / f"fold{fold}"
            scores = json.loads((run_dir / "eval" / "attribute_scores.json").read_text())
            if name != "figure5":
                results.setdefault(label, []).append(scores)
                continue
            results.setdefault("downstream (target segmenters)", []).append(scores)
            test = bundle_setting(bundle_root, "datalists", {**variant, "dataset_dir": data_root, "fold": fold})["test"]
            attributes = [k for k in scores if k not in ("macro_average", "micro_average", "overall", "num_images")]
            results.setdefault("pretext (union network)", []).append(pretext_scores(run_dir, test, attributes))
    num_folds = bundle_setting(bundle_root, "num_folds", overrides)
    markdown, rows, summary = summary_table(results, "jaccard", title)
    dice_markdown, dice_rows, dice_summary = summary_table(results, "dice", title)
    markdown += "\n" + dice_markdown
    rows += dice_rows[1:]
    summary = {"jaccard": summary, "dice": dice_summary}
    kind = (
        "synthetic ISIC 2018 (monai_skinattr generator)"
        if synthetic.is_complete(data_root, "isic", "training")
        else "ISIC"
    )
    markdown += (
        f"\nData: {kind} at {data_root}. Scored: fold(s) {list(folds)} of {num_folds} of the "
        "training split, scored the official ISIC Task 2 way at the original size; checkpoints and early stopping on "
        f"a validation split carved from the other folds. Epochs: {json.dumps(dict(epochs))}. "
        f"Settings: {json.dumps(dict(overrides), default=str)}.\n"
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
