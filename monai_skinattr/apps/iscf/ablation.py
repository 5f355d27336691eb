"""The ISCF ablation: ISCF vs plain skip concatenation, 1/2/3 fused scale pairs, and the 384 x 384 input."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monai_skinattr.config import as_bool, run_bundle
from monai_skinattr.networks import EffFormerISCF
from monai_skinattr.networks.profile import profile_network
from monai_skinattr.utils.io import markdown_table, read_metrics_csv, write_table

__all__ = ["VARIANTS", "run_ablation", "ablation_table"]

#: label -> config overrides of each run (the full model first).
VARIANTS = {
    "ISCF, 3 scale pairs": {"skip": "iscf", "fused_scales": 3},
    "ISCF, 2 scale pairs": {"skip": "iscf", "fused_scales": 2},
    "ISCF, 1 scale pair": {"skip": "iscf", "fused_scales": 1},
    "skip concatenation (no ISCF)": {"skip": "concat", "fused_scales": 3},
}


def run_ablation(
    bundle_root: str | Path, workdir: str | Path, overrides: Mapping | None = None, with_384: object = False
) -> str:
    """
    Train and evaluate every variant of :data:`VARIANTS` (and, with ``with_384``, the full model at 384 x 384) with
    the bundle's ``train.json`` / ``evaluate.json``, measure parameters, GFLOPs and CPU latency at the variant's
    input size, and return the Markdown table (also ``<workdir>/ablation.{md,csv,json}``).

    .. code-block:: python

        print(run_ablation("bundles/iscf", "runs/iscf", {"max_epochs": 5}))
    """
    overrides = dict(overrides or {})
    variants = dict(VARIANTS)
    if as_bool(with_384, "with_384"):
        variants["ISCF, 3 scale pairs, 384 x 384"] = {"skip": "iscf", "fused_scales": 3, "spatial_size": [384, 384]}
    results = {}
    for label, variant in variants.items():
        run_dir = Path(workdir) / label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        settings = {**overrides, **variant, "models_dir": str(run_dir / "models"), "output_dir": str(run_dir / "eval")}
        run_bundle(bundle_root, ["common.json", "train.json"], **settings)
        test_dir = run_dir / "eval" / "test"
        run_bundle(
            bundle_root, ["common.json", "inference.json", "evaluate.json"], **{**settings, "output_dir": str(test_dir)}
        )
        size = settings.get("spatial_size", [224, 224])
        net = EffFormerISCF(skip=variant["skip"], fused_scales=variant["fused_scales"])
        params, gflops, ms = profile_network(net, size)
        results[label] = {
            "size": list(size),
            "params": params,
            "gflops": gflops,
            "latency_ms": ms,
            **read_metrics_csv(test_dir),
        }
    data = overrides.get("dataset_dir", "the bundle's synthetic ISIC 2018 data")
    epochs = overrides.get("max_epochs", 100)
    return ablation_table(results, workdir, f"ISCF ablation, from scratch, {epochs} epochs; test split of {data}")


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
