"""The method's three fine-tuning phases, each from the previous phase's best checkpoint, and their table."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from monai_skinattr.config import run_bundle
from monai_skinattr.networks import MobileNetV2UNet, count_parameters, load_stage_weights
from monai_skinattr.utils.io import markdown_table, read_metrics_csv, write_table

__all__ = ["PHASES", "prepare_network", "run_phases", "phase_table"]

#: phase -> (what the report calls it, learning rate): encoder frozen, "stage 4" open, everything open.
PHASES = {"frozen": ("encoder frozen", 1e-3), "last": ("stage 4 open", 1e-4), "all": ("all layers open", 1e-4)}


def prepare_network(net: MobileNetV2UNet, init_checkpoint: str | Path = "", phase: str = "frozen") -> nn.Module:
    """The phase's network: the previous phase's best weights (strict) when given, trainable layers set."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {list(PHASES)}, got '{phase}'.")
    if init_checkpoint:
        load_stage_weights(net, init_checkpoint, strict=True)
    return net.set_trainable(phase)


def _best_val_loss(folder: Path) -> float:
    """The lowest validation loss of the phase (recorded per epoch by ``LossCurves``)."""
    with open(folder / "loss_curves.csv") as f:
        return min(float(r["val_loss"]) for r in csv.DictReader(f))


def run_phases(bundle_root: str | Path, workdir: str | Path, overrides: Mapping | None = None) -> str:
    """
    Train the three phases in order (``train_frozen.json`` → ``train_last.json`` → ``train_all.json``, each from
    the previous phase's best checkpoint), evaluate each phase's best checkpoint on the test split
    (``inference.json`` + ``evaluate.json``: metrics, overlays, error maps) and return the Markdown table (also
    written to ``<workdir>/phases.{md,csv,json}``). The last phase's best weights become ``models/model.pt``.

    .. code-block:: python

        print(run_phases("bundles/mobilenet_unet", "runs/mobilenet", {"max_epochs": 5}))
    """
    work = Path(workdir)
    models, evals = work / "models", work / "eval"
    common = {**dict(overrides or {}), "models_dir": str(models), "output_dir": str(evals)}
    results = {}
    for phase in PHASES:
        run_bundle(bundle_root, ["common.json", f"train_{phase}.json"], **common)
        shutil.copyfile(models / phase / "model.pt", models / "model.pt")
        test_dir = evals / phase / "test"
        run_bundle(
            bundle_root, ["common.json", "inference.json", "evaluate.json"], **{**common, "output_dir": str(test_dir)}
        )
        net = prepare_network(MobileNetV2UNet(), "", phase)
        results[phase] = {
            "val_loss": _best_val_loss(evals / phase),
            **read_metrics_csv(test_dir),
            "trainable": count_parameters(net, bn_statistics=False, trainable_only=True),
            "non_trainable": count_parameters(net, bn_statistics=False) - count_parameters(net, False, True),
        }
    weights = (overrides or {}).get("encoder_weights") or ""
    start = f"ImageNet encoder ({Path(weights).name})" if weights else "random encoder (no ImageNet encoder_weights)"
    data = (overrides or {}).get("dataset_dir", "the bundle's synthetic ISIC 2016 data")
    title = f"MobileNetV2 U-Net, three phases, {start}; test split of {data}"
    return phase_table(results, work, title)


def phase_table(results: Mapping[str, Mapping[str, float]], out_dir: str | Path | None = None, title: str = "") -> str:
    """The report's table: per phase the validation loss, test IoU (Jaccard) and Dice, and the parameter split;
    plus the ISIC Task 1 thresholded Jaccard, sensitivity and specificity."""
    header = ["phase", "lr", "lowest val loss", "IoU", "Dice", "ISIC thr. Jaccard", "sensitivity", "specificity",
              "trainable params", "non-trainable params"]  # fmt: skip
    rows = []
    for phase, r in results.items():
        name, lr = PHASES[phase]
        rows.append([name, f"{lr:g}", f"{r['val_loss']:.4f}", f"{r['test_jaccard']:.4f}", f"{r['test_dice']:.4f}",
                     f"{r['test_threshold_jaccard']:.4f}", f"{r['test_sensitivity']:.4f}",
                     f"{r['test_specificity']:.4f}", f"{r['trainable']:,}", f"{r['non_trainable']:,}"])  # fmt: skip
    markdown = markdown_table(header, rows, title, text_columns=1)
    if out_dir is not None:
        write_table(out_dir, "phases", markdown, header, rows, {k: dict(v) for k, v in results.items()})
    return markdown
