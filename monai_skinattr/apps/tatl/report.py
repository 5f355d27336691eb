"""TATL's tables: per-attribute ISIC Task 2 scores of one run, and mean ± std over folds of several variants.

Functions return Markdown (and write CSV/JSON/Markdown when asked); callers print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_skinattr.data.checks import DatasetLayoutError
from monai_skinattr.data.images import read_mask
from monai_skinattr.metrics import isic_task2_score
from monai_skinattr.utils.io import markdown_table, write_table

__all__ = ["score_cascade", "attribute_table", "write_report", "summary_table", "write_table"]

AVERAGES = ("macro_average", "micro_average")


def score_cascade(datalist: Sequence[dict], prediction_dir: str | Path, attributes: Sequence[str]) -> dict:
    """ISIC Task 2 scores (the official definition, at the original size) of the written
    ``<id>_attribute_<name>.png`` in ``prediction_dir`` against the ground truth of ``datalist``."""
    pred_dir = Path(prediction_dir)
    truths: dict[str, list] = {a: [] for a in attributes}
    preds: dict[str, list] = {a: [] for a in attributes}
    missing = []
    for entry in datalist:
        for a in attributes:
            path = pred_dir / f"{entry['id']}_attribute_{a}.png"
            if not path.is_file():
                missing.append(f"{path}: missing prediction")
                continue
            truths[a].append(read_mask(entry[a]))
            preds[a].append(read_mask(path))
    if missing:
        raise DatasetLayoutError(pred_dir, missing)
    return {**isic_task2_score(truths, preds), "num_images": len(datalist)}


def _rows(scores: Mapping) -> list[str]:
    return [k for k in scores if isinstance(scores[k], Mapping) and k not in AVERAGES] + list(AVERAGES)


def attribute_table(scores: Mapping, title: str = "") -> str:
    """Markdown table of one run's per-attribute Jaccard and Dice with the macro and micro (ISIC overall) means."""
    rows = [[r, f"{scores[r]['jaccard']:.4f}", f"{scores[r]['dice']:.4f}"] for r in _rows(scores)]
    return markdown_table(["attribute", "Jaccard", "Dice"], rows, title)


def write_report(scores: Mapping, out_dir: str | Path, stem: str = "attribute_scores", title: str = "") -> str:
    """:func:`attribute_table` written as Markdown/CSV/JSON to ``out_dir``; returns the Markdown."""
    markdown = attribute_table(scores, title)
    rows = [(r, f"{scores[r]['jaccard']:.6f}", f"{scores[r]['dice']:.6f}") for r in _rows(scores)]
    write_table(out_dir, stem, markdown, ["attribute", "jaccard", "dice"], rows, dict(scores))
    return markdown


def summary_table(
    results: Mapping[str, Sequence[Mapping]], metric: str = "jaccard", title: str = "", unit: str = "fold(s)"
) -> tuple[str, list[list[str]], dict]:
    """
    Mean ± standard deviation over folds: one column per variant (``results[label]`` = that variant's per-fold
    score dicts; ``unit`` names what they are), one row per attribute plus the macro and micro means (TATL Tables
    3–6 and A.10–A.13).

    Returns:
        ``(markdown, csv rows with header first (metric, attribute, mean/std per variant),
        {label: {row: [mean, std, n]}})``.
    """
    labels = list(results)
    if not labels or any(not results[k] for k in labels):
        raise ValueError("every variant needs at least one fold's scores.")
    rows = _rows(results[labels[0]][0])
    summary: dict = {}
    for label in labels:
        summary[label] = {}
        for r in rows:
            values = np.array([fold[r][metric] for fold in results[label]], dtype=float)
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            summary[label][r] = [float(values.mean()), std, len(values)]
    folds = {len(results[k]) for k in labels}
    head = f"**{title}** ({metric}, mean ± std over {'/'.join(map(str, sorted(folds)))} {unit})\n\n" if title else ""
    cells = [[r, *[f"{summary[k][r][0]:.4f} ± {summary[k][r][1]:.4f}" for k in labels]] for r in rows]
    csv_rows = [["metric", "attribute", *[f"{k} {s}" for k in labels for s in ("mean", "std")]]]
    csv_rows += [[metric, r, *[f"{summary[k][r][i]:.6f}" for k in labels for i in (0, 1)]] for r in rows]
    return head + markdown_table(["attribute", *labels], cells), csv_rows, summary
