"""The method's four stages and the paper's Table 1, run in order from the bundle's configs, resumable."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from ...config import run_bundle
from ...utils.io import write_text_atomic

__all__ = ["STAGES", "run_pipeline"]

logger = logging.getLogger(__name__)

#: stage name -> (configs after common.json, overrides); run in this order
STAGES = {
    "segmenter": (["train_segmenter.json"], {}),
    "perturb_gp_ts": (["perturb.json"], {"variant": "gp_ts"}),
    "perturb_gp_t": (["perturb.json"], {"variant": "gp_t"}),
    "translator_gp_ts": (["train_translator.json"], {"variant": "gp_ts"}),
    "translator_gp_t": (["train_translator.json"], {"variant": "gp_t"}),
    "translator_e2e": (["train_preprocessor.json"], {}),
    "assemble": (["assemble.json"], {"variant": "gp_ts"}),
    "evaluate": (["inference.json", "evaluate.json"], {}),
    "table1": (["table1.json"], {}),
}
#: stage -> its key in ``epochs``
_EPOCHS = {
    "segmenter": "segmenter",
    "translator_gp_ts": "translator",
    "translator_gp_t": "translator",
    "translator_e2e": "translator",
}


def _record(models_dir: Path, settings: dict, restart: bool) -> list[str]:
    """The stages already finished with the same settings (``[]`` when ``restart``); refuses a different run."""
    path = models_dir / "stages.json"
    if restart or not path.is_file():
        write_text_atomic(json.dumps({"settings": settings, "finished": []}, indent=2), path)
        return []
    record = json.loads(path.read_text())
    if record["settings"] != settings:
        changed = sorted(k for k in {*settings, *record["settings"]} if settings.get(k) != record["settings"].get(k))
        raise ValueError(
            f"'{models_dir}' holds a run with other settings ({', '.join(changed)}); pass restart=true to start it "
            "again or use another models_dir."
        )
    return list(record["finished"])


def run_pipeline(
    bundle_root: str | Path,
    models_dir: str | Path,
    output_dir: str | Path,
    epochs: Mapping[str, int],
    overrides: Mapping | None = None,
    restart: bool = False,
) -> str:
    """
    Deep input transfer end to end: (a) train the segmenter, (b) perturb every training image for GP_Ts (γ=1) and
    GP_T (γ=0.1), (c) train the translators (SSIM + L1, L1 only) and the pre-processor without GP target, (d)
    assemble translator + segmenter as ``models/model.pt`` and segment the test split with it, then the paper's
    Table 1. Each stage is one run of the bundle's configs; finished stages are recorded in
    ``<models_dir>/stages.json`` and skipped when the run is started again with the same settings (the perturbation
    itself resumes image by image).

    .. code-block:: python

        epochs = {"segmenter": 5, "translator": 5}
        print(run_pipeline("bundles/input_transfer", "runs/it/models", "runs/it/eval", epochs))

    Returns:
        the Markdown Table 1 (also in ``<output_dir>/table1/table1.md``).
    """
    models, out = Path(models_dir), Path(output_dir)
    models.mkdir(parents=True, exist_ok=True)
    settings = {**dict(overrides or {}), "epochs": dict(epochs)}
    finished = _record(models, settings, restart)
    common = {**dict(overrides or {}), "models_dir": str(models), "output_dir": str(out)}
    for stage, (configs, extra) in STAGES.items():
        if stage in finished:
            logger.info("stage %s already finished in %s", stage, models)
            continue
        logger.info("stage %s", stage)
        override = {**common, **extra}
        if stage in _EPOCHS:
            override["max_epochs"] = int(epochs[_EPOCHS[stage]])
        if stage == "evaluate":
            override["output_dir"] = str(out / "test")
        run_bundle(bundle_root, ["common.json", *configs], **override)
        finished.append(stage)
        write_text_atomic(json.dumps({"settings": settings, "finished": finished}, indent=2), models / "stages.json")
    return (out / "table1" / "table1.md").read_text()
