"""The method's four stages, the test-split evaluation and the paper's Table 1 as one plan on the stage runner."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ...runner import BundleRun, Plan

__all__ = ["pipeline_plan"]


def pipeline_plan(
    bundle_root: str | Path,
    models_dir: str | Path,
    output_dir: str | Path,
    epochs: Mapping[str, int],
    overrides: Mapping | None = None,
) -> Plan:
    """
    Deep input transfer end to end, as runs of the bundle's configs (each after ``common.json``): (a) train the
    segmenter, (b) perturb every training image for GP_Ts (γ=1) and GP_T (γ=0.1), (c) train the translators (SSIM
    + L1, L1 only) and the pre-processor without GP target, (d) assemble translator + segmenter as
    ``<models_dir>/model.pt`` and score the test split with it (``<output_dir>/test``), then the paper's Table 1
    (``<output_dir>/table1``). The record is ``<models_dir>/runs.json``; the perturbation runs resume image by
    image.

    .. code-block:: python

        epochs = {"segmenter": 5, "translator": 5}
        plan = pipeline_plan("bundles/input_transfer", "runs/it/models", "runs/it/eval", epochs)
        print(monai_skinattr.runner.run_plan(plan))

    Args:
        bundle_root: the bundle's folder.
        models_dir: where the checkpoints and perturbed images go (the plan's workdir: its record is here).
        output_dir: where the curves, the test-split scores and Table 1 go.
        epochs: ``max_epochs`` of the ``"segmenter"`` and of each ``"translator"`` (the pre-processor included).
        overrides: config values every run gets (``{"spatial_size": [96, 128], "dataset_name": "shenzhen"}``).

    Returns:
        the plan; its table step returns ``<output_dir>/table1/table1.md``, written by the last run.
    """
    base = {**dict(overrides or {}), "models_dir": str(models_dir), "output_dir": str(output_dir)}
    out = Path(output_dir)

    def run(name: str, configs: list[str], **extra) -> BundleRun:
        return BundleRun(name, ["common.json", *configs], {**base, **extra})

    segmenter, translator = int(epochs["segmenter"]), int(epochs["translator"])
    runs = [
        run("segmenter", ["train_segmenter.json"], max_epochs=segmenter),
        run("perturb_gp_ts", ["perturb.json"], variant="gp_ts"),
        run("perturb_gp_t", ["perturb.json"], variant="gp_t"),
        run("translator_gp_ts", ["train_translator.json"], variant="gp_ts", max_epochs=translator),
        run("translator_gp_t", ["train_translator.json"], variant="gp_t", max_epochs=translator),
        run("translator_e2e", ["train_preprocessor.json"], max_epochs=translator),
        run("assemble", ["assemble.json"], variant="gp_ts"),
        run("evaluate", ["inference.json", "evaluate.json"], output_dir=str(out / "test")),
        run("table1", ["table1.json"]),
    ]
    return Plan(bundle_root, models_dir, runs, table=(out / "table1" / "table1.md").read_text)
