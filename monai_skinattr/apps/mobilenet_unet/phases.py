"""The method's three fine-tuning phases, each from the previous phase's best checkpoint, as a plan, and their table."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Mapping
from pathlib import Path

from monai_skinattr.networks import MobileNetV2UNet, count_parameters
from monai_skinattr.runner import BundleRun, Plan
from monai_skinattr.utils.io import markdown_table, read_metrics_csv, write_table

__all__ = ["PHASES", "phases_plan", "phase_table"]

#: phase -> (what the report calls it, learning rate): encoder frozen, "stage 4" open, everything open.
PHASES = {"frozen": ("encoder frozen", 1e-3), "last": ("stage 4 open", 1e-4), "all": ("all layers open", 1e-4)}


def _best_val_loss(folder: Path) -> float:
    """The lowest validation loss of the phase (recorded per epoch by ``LossCurves``)."""
    with open(folder / "loss_curves.csv") as f:
        return min(float(r["val_loss"]) for r in csv.DictReader(f))


def phases_plan(bundle_root: str | Path, workdir: str | Path, overrides: Mapping | None = None) -> Plan:
    """
    The three phases as a plan on :func:`monai_skinattr.runner.run_plan`: per phase in order a run
    ``train/<phase>`` (``common.json`` + ``train_<phase>.json``, starting from the previous phase's best checkpoint
    ``<workdir>/models/<previous>/model.pt``; best weights in ``<workdir>/models/<phase>/model.pt``, loss curves in
    ``<workdir>/eval/<phase>``) and a run ``evaluate/<phase>`` (``common.json`` + ``inference.json`` +
    ``evaluate.json`` of that checkpoint on the test split: metrics, masks, overlays, error maps in
    ``<workdir>/eval/<phase>/test``), all with ``overrides``. Its table step copies the last phase's best weights to
    ``<workdir>/models/model.pt`` (the bundle's model) and writes :func:`phase_table` to
    ``<workdir>/phases.{md,csv,json}``.

    .. code-block:: python

        print(run_plan(phases_plan("bundles/mobilenet_unet", "runs/mobilenet", {"max_epochs": 5})))
    """
    overrides = dict(overrides or {})
    models, evals = Path(workdir) / "models", Path(workdir) / "eval"
    common = {**overrides, "models_dir": str(models), "output_dir": str(evals)}
    evaluate = ["common.json", "inference.json", "evaluate.json"]
    runs = []
    for phase in PHASES:
        runs += [
            BundleRun(f"train/{phase}", ["common.json", f"train_{phase}.json"], common),
            BundleRun(
                f"evaluate/{phase}",
                evaluate,
                {**common, "models_dir": str(models / phase), "output_dir": str(evals / phase / "test")},
            ),
        ]

    def table() -> str:
        shutil.copyfile(models / list(PHASES)[-1] / "model.pt", models / "model.pt")
        results = {}
        for phase in PHASES:
            net = MobileNetV2UNet().set_trainable(phase)
            trainable = count_parameters(net, bn_statistics=False, trainable_only=True)
            results[phase] = {
                "val_loss": _best_val_loss(evals / phase),
                **read_metrics_csv(evals / phase / "test"),
                "trainable": trainable,
                "non_trainable": count_parameters(net, bn_statistics=False) - trainable,
            }
        weights = overrides.get("encoder_weights")
        start = "random encoder (no ImageNet encoder_weights)"
        if weights:
            start = f"ImageNet encoder ({Path(weights).name})"
        data = overrides.get("dataset_dir", "the bundle's synthetic ISIC 2016 data")
        return phase_table(results, workdir, f"MobileNetV2 U-Net, three phases, {start}; test split of {data}")

    return Plan(bundle_root, workdir, runs, table)


def phase_table(results: Mapping[str, Mapping[str, float]], out_dir: str | Path | None = None, title: str = "") -> str:
    """The report's table: per phase the validation loss, the test loss (the training loss, DiceCE, of the logits
    resized to each test photo's size against its mask), test IoU (Jaccard) and Dice, and the parameter split; plus
    the ISIC Task 1 thresholded Jaccard, sensitivity and specificity."""
    header = ["phase", "lr", "lowest val loss", "test loss", "IoU", "Dice", "ISIC thr. Jaccard", "sensitivity",
              "specificity", "trainable params", "non-trainable params"]  # fmt: skip
    rows = []
    for phase, r in results.items():
        name, lr = PHASES[phase]
        rows.append([name, f"{lr:g}", f"{r['val_loss']:.4f}", f"{r['test_loss']:.4f}", f"{r['test_jaccard']:.4f}",
                     f"{r['test_dice']:.4f}",
                     f"{r['test_threshold_jaccard']:.4f}", f"{r['test_sensitivity']:.4f}",
                     f"{r['test_specificity']:.4f}", f"{r['trainable']:,}", f"{r['non_trainable']:,}"])  # fmt: skip
    markdown = markdown_table(header, rows, title, text_columns=1)
    if out_dir is not None:
        write_table(out_dir, "phases", markdown, header, rows, {k: dict(v) for k, v in results.items()})
    return markdown
