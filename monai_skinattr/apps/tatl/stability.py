"""TATL Figure 7: the stability bound of Proposition 1 per attribute for several initialisations."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset

from monai_skinattr.config import as_bool
from monai_skinattr.losses import TverskyJaccardLoss
from monai_skinattr.metrics import stability_bound
from monai_skinattr.networks import load_stage_weights
from monai_skinattr.utils.io import markdown_table, write_table
from monai_skinattr.visualize import bar_chart

from .data import attributes_of
from .networks import TATLSegmenter

__all__ = ["stability_figure"]


def stability_figure(
    bundle_root: str | Path,
    out: str | Path,
    fold: int,
    overrides: Mapping,
    attributes: Sequence[str] | None = None,
    arch: str = "unet",
    max_samples: int | None = None,
    iters: int = 10,
    c: float = 0.01,
    num_hypotheses: int = 4,
) -> str:
    """
    Figure 7 of TATL: ``100 x`` the right side of Proposition 1 (``monai_skinattr.metrics.stability_bound``,
    per-sample Hessian spectral norms by power iteration, c = 0.01, |K| = 4) over every training sample of each
    attribute (cropped as stage 3 sees it; ``max_samples`` caps m for a quick look) at three initialisations of
    the ``arch`` segmenter, before any training on the attribute: random, TATL (the stage-2 union network of round
    ``fold``, in ``<out>/fold<k>/models``) and ImageNet (only when ``overrides["encoder_weights"]`` names a file).
    Writes ``table.md/.csv/.json`` and ``figure.png`` under ``out``; returns the Markdown. A bound whose γ⁻ is not
    positive is undefined (shown "n/a"). The table step of ``experiment_plan("figure7", ...)``, which trains the
    union networks first.

    .. code-block:: python

        print(run_plan(experiment_plan("figure7", "bundles/tatl", "runs", [0], figure7={"max_samples": 8})))
    """
    out = Path(out)
    common = {**overrides, "fold": fold, "models_dir": str(out / f"fold{fold}" / "models")}
    common["output_dir"] = str(out / f"fold{fold}" / "eval")
    names = list(attributes or attributes_of(common["dataset_dir"]))
    weights = overrides.get("encoder_weights") or ""
    crop = as_bool(overrides.get("crop", True), "crop")
    union = Path(common["models_dir"]) / "union" / arch / "model.pt"
    configs = [str(Path(bundle_root) / "configs" / n) for n in ("common.json", "train_attribute.json")]
    values: dict[str, dict[str, float]] = {}
    notes = []
    for name in names:
        parser = ConfigParser()
        parser.read_config(configs)
        parser.update({"bundle_root": str(bundle_root), **common})
        parser.update({"attribute": name, "arch": arch, "from_union": False, "crop": crop, "augment": False})
        data = parser.get_parsed_content("train#dataset#data")[:max_samples]
        loader = DataLoader(Dataset(data, parser.get_parsed_content("train#preprocessing")), batch_size=4)
        inits = {"random": ("", "instance"), "TATL w/o ImageNet": ("", "instance")}
        if weights:
            inits = {"random": ("", "imagenet"), "TATL": ("", "imagenet"), "ImageNet": (weights, "imagenet")}
        values[name] = {}
        for init, (init_weights, normalization) in inits.items():
            net = TATLSegmenter(arch, overrides.get("encoder", "efficientnet-b0"), init_weights, normalization)
            if init.startswith("TATL"):
                load_stage_weights(net, union)
            try:
                terms = stability_bound(
                    net, TverskyJaccardLoss(), loader, c=c, num_hypotheses=num_hypotheses, iters=iters
                )
                values[name][init] = 100 * terms["bound"]
            except ValueError as err:
                values[name][init] = math.nan
                notes.append(f"{name}/{init}: {err}")
    inits_run = list(next(iter(values.values())))
    cells = [
        [name, *["n/a" if math.isnan(row[i]) else f"{row[i]:.4f}" for i in inits_run]] for name, row in values.items()
    ]
    m = "all" if max_samples is None else f"at most {max_samples}"
    markdown = f"**TATL Figure 7: stability bound x 100 ({arch}, {m} training samples, c = {c}, |K| = "
    markdown += f"{num_hypotheses}, fold {fold})**\n\n" + markdown_table(["attribute", *inits_run], cells)
    if not weights:
        markdown += "\nImageNet column not run: no encoder_weights given.\n"
    if notes:
        markdown += "\nUndefined bounds:\n" + "".join(f"- {n}\n" for n in notes)
    rows = [[name, *[f"{values[name][i]:.6f}" for i in inits_run]] for name in values]
    write_table(out, "table", markdown, ["attribute", *inits_run], rows, values)
    bar_chart(values, out / "figure.png", title="TATL Figure 7: stability bound x 100", ylabel="bound x 100")
    return markdown
