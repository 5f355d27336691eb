"""TATL Figure 7: the stability bound of Proposition 1 per attribute for several initialisations."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset

from monai_skinattr.losses import TverskyJaccardLoss
from monai_skinattr.metrics import stability_bound
from monai_skinattr.networks import load_stage_weights
from monai_skinattr.utils.io import markdown_table, write_table
from monai_skinattr.visualize import bar_chart

from .data import attributes_of
from .networks import TATLSegmenter
from .workflow import TATLWorkflow

__all__ = ["stability_figure"]


def stability_figure(
    bundle_root: str | Path,
    workdir: str | Path,
    fold: int = 0,
    epochs: Mapping[str, int] | None = None,
    overrides: Mapping | None = None,
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
    ``fold``, trained here first) and ImageNet (only when ``overrides["encoder_weights"]`` names a file). Writes
    ``table.md/.csv/.json`` and ``figure.png``
    under ``<workdir>/figure7/``; returns the Markdown. A bound whose γ⁻ is not positive is undefined (shown "n/a").

    .. code-block:: python

        print(stability_figure("bundles/tatl", "runs", overrides={"spatial_size": [128, 160]}, max_samples=8))
    """
    overrides = dict(overrides or {})
    out = Path(workdir) / "figure7"
    workflow = TATLWorkflow(bundle_root, out, stages=(1, 2, 3), epochs=epochs, overrides=overrides)
    workflow.train_pretext(fold)
    common = workflow._common(fold)
    names = list(attributes or attributes_of(common["dataset_dir"]))
    weights = overrides.get("encoder_weights") or ""
    union = Path(common["models_dir"]) / "union" / arch / "model.pt"
    configs = [str(Path(bundle_root) / "configs" / n) for n in ("common.json", "train_attribute.json")]
    values: dict[str, dict[str, float]] = {}
    notes = []
    for name in names:
        parser = ConfigParser()
        parser.read_config(configs)
        parser.update({"bundle_root": str(bundle_root), **workflow.overrides, **common})
        parser.update({"attribute": name, "arch": arch, "from_union": False, "crop": workflow.crop, "augment": False})
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
