"""The ISCF ablation: ISCF vs plain skip concatenation, 1/2/3 fused scale pairs, and the 384 x 384 input."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monai_skinattr.config import as_bool
from monai_skinattr.networks import EffFormerISCF
from monai_skinattr.networks.profile import profile_network
from monai_skinattr.runner import BundleRun, Plan, bundle_setting
from monai_skinattr.utils.io import markdown_table, read_metrics_csv, write_table

__all__ = ["VARIANTS", "ablation_plan", "ablation_table"]

#: label -> config overrides of each run (the full model first).
VARIANTS = {
    "ISCF, 3 scale pairs": {"skip": "iscf", "fused_scales": 3},
    "ISCF, 2 scale pairs": {"skip": "iscf", "fused_scales": 2},
    "ISCF, 1 scale pair": {"skip": "iscf", "fused_scales": 1},
    "skip concatenation (no ISCF)": {"skip": "concat", "fused_scales": 3},
}


def _folder(label: str) -> str:
    """A variant's folder under the plan's ``workdir`` (and its runs' name): ``"ISCF, 3 scale pairs"`` ->
    ``"ISCF_3_scale_pairs"``."""
    return label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")


def ablation_plan(
    bundle_root: str | Path, workdir: str | Path, overrides: Mapping | None = None, with_384: object = False
) -> Plan:
    """
    The ablation table as a plan on :func:`monai_skinattr.runner.run_plan`: for every variant of :data:`VARIANTS`
    (and, with ``with_384``, the full model at 384 x 384) a run ``train/<folder>`` (``common.json`` +
    ``train.json``, best weights in ``<workdir>/<folder>/models``) and a run ``evaluate/<folder>`` (``common.json``
    + ``inference.json`` + ``evaluate.json`` on the test split, in ``<workdir>/<folder>/eval/test``), all with
    ``overrides``. Its table step measures parameters, GFLOPs and CPU latency at the variant's input size and
    writes :func:`ablation_table` to ``<workdir>/ablation.{md,csv,json}``.

    .. code-block:: python

        print(run_plan(ablation_plan("bundles/iscf", "runs/iscf", {"max_epochs": 5})))
    """
    overrides = dict(overrides or {})
    variants = dict(VARIANTS)
    if as_bool(with_384, "with_384"):
        variants["ISCF, 3 scale pairs, 384 x 384"] = {"skip": "iscf", "fused_scales": 3, "spatial_size": [384, 384]}
    work = Path(workdir)
    train, evaluate = ["common.json", "train.json"], ["common.json", "inference.json", "evaluate.json"]
    runs = []
    for label, variant in variants.items():
        folder = work / _folder(label)
        settings = {**overrides, **variant, "models_dir": str(folder / "models")}
        trained = BundleRun(f"train/{folder.name}", train, {**settings, "output_dir": str(folder / "eval")}, needs=[])
        tested = {**settings, "output_dir": str(folder / "eval" / "test")}
        runs += [trained, BundleRun(f"evaluate/{folder.name}", evaluate, tested, needs=[trained.name])]

    def table() -> str:
        results = {}
        for label, variant in variants.items():
            size = bundle_setting(bundle_root, "spatial_size", {**overrides, **variant})
            net = EffFormerISCF(skip=variant["skip"], fused_scales=variant["fused_scales"])
            params, gflops, ms = profile_network(net, size)
            metrics = read_metrics_csv(work / _folder(label) / "eval" / "test")
            results[label] = {"size": list(size), "params": params, "gflops": gflops, "latency_ms": ms, **metrics}
        data = overrides.get("dataset_dir", "the bundle's synthetic ISIC 2018 data")
        epochs = bundle_setting(bundle_root, "max_epochs", overrides)
        return ablation_table(results, work, f"ISCF ablation, from scratch, {epochs} epochs; test split of {data}")

    return Plan(bundle_root, workdir, runs, table)


def ablation_table(results: Mapping[str, Mapping], out_dir: str | Path | None = None, title: str = "") -> str:
    """Markdown table: parameters, GFLOPs, latency (batch 1, CPU), test Dice, Jaccard and ISIC thresholded Jaccard."""
    header = ["variant", "input", "params (M)", "GFLOPs", "latency (ms)", "Dice", "Jaccard", "ISIC thr. Jaccard"]
    rows = [
        [
            label,
            "x".join(map(str, r["size"])),
            f"{r['params'] / 1e6:.2f}",
            f"{r['gflops']:.1f}",
            f"{r['latency_ms']:.0f}",
            f"{r['test_dice']:.4f}",
            f"{r['test_jaccard']:.4f}",
            f"{r['test_threshold_jaccard']:.4f}",
        ]  # fmt: skip
        for label, r in results.items()
    ]
    markdown = markdown_table(header, rows, title, text_columns=2)
    if out_dir is not None:
        write_table(out_dir, "ablation", markdown, header, rows, {k: dict(v) for k, v in results.items()})
    return markdown
