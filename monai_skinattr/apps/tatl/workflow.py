"""TATL's stages run in order: one cross-validation round, end to end, from the bundle's configs."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_skinattr.config import run_bundle
from monai_skinattr.utils.io import write_text_atomic

from .data import as_bool, attributes_of, prepare_dataset

__all__ = ["TATLWorkflow", "run_label", "STAGES_RECORD"]

logger = logging.getLogger(__name__)

#: the file in ``<workdir>/fold<k>/`` recording which stages of the round finished, with which settings
STAGES_RECORD = "stages.json"


def run_label(stages: Sequence[int], overrides: Mapping | None = None) -> str:
    """
    What a run is, as the paper names its columns: ``"TATL"`` (stages 1, 2, 3) or ``"Stage 2,3"`` etc. (``crop``
    false removes stage 1), the switches that depart from the paper in brackets (ground-truth lesion crops, FE,
    augmentation), and ``"w/o ImageNet"`` when no ImageNet encoder weights were loaded.

    .. code-block:: python

        run_label([1, 2, 3], {"freeze_encoder": True})  # 'TATL (FE) w/o ImageNet'
    """
    o = overrides or {}
    run = set(stages) - ({1} if not as_bool(o.get("crop", True), "crop") else set())
    label = "TATL" if run == {1, 2, 3} else "Stage " + ",".join(map(str, sorted(run)))
    extras = [
        text
        for key, default, when, text in (
            ("use_predicted_lesion", True, False, "ground-truth lesion crops"),
            ("freeze_encoder", False, True, "FE"),
            ("augment", False, True, "augmentation"),
        )
        if as_bool(o.get(key, default), key) == when and (key != "use_predicted_lesion" or 1 in run)
    ]
    label += f" ({', '.join(extras)})" if extras else ""
    return label + ("" if o.get("encoder_weights") else " w/o ImageNet")


class TATLWorkflow:
    """
    TATL (Alg. 1) on one cross-validation round, each stage a run of this bundle's configs: stage 1 Segment-Net
    (``train_lesion.json``) and its lesion masks (``predict_lesion.json``), stage 2 union segmenters
    (``train_union.json``, one per shape), stage 3 target segmenters (``train_attribute.json``, one per attribute
    and shape), the cascade assembled into ``models/model.pt``, then evaluated on the scored fold
    (``inference.json`` + ``evaluate.json``). Every stage trains on the training folds and selects on a
    validation split carved from them; the scored fold is seen only by the evaluation.

    A round that was killed resumes when run again: stages recorded finished with the same settings in
    ``<workdir>/fold<k>/stages.json`` are skipped, the interrupted one carries on from its last checkpoint, and
    everything after the first stage that runs again is redone. ``overrides={"resume": False}`` redoes every stage.

    .. code-block:: python

        wf = TATLWorkflow("bundles/tatl", "runs/tatl", overrides={"spatial_size": [128, 160]})
        scores = wf.run_fold(0)  # ISIC Task 2 scores of fold 0
        print(scores["macro_average"]["jaccard"])

    Args:
        bundle_root: the bundle folder (its ``configs/`` are used).
        workdir: where each fold's ``models/`` and ``eval/`` go (``<workdir>/fold<k>/``).
        stages: TATL stages to run; ``1`` absent: no crop (whole images); ``2`` absent: stage 3 starts from the
            encoder weights instead of the union network.
        epochs: maximum epochs per stage, ``{"lesion", "union", "attribute"}``.
        overrides: other config values for every stage (``dataset_dir``, ``spatial_size``, ``encoder_weights``...).
    """

    def __init__(
        self,
        bundle_root: str | Path,
        workdir: str | Path,
        stages: Sequence[int] = (1, 2, 3),
        epochs: Mapping[str, int] | None = None,
        overrides: Mapping | None = None,
    ) -> None:
        if not set(stages) <= {1, 2, 3} or 3 not in stages:
            raise ValueError(f"stages must include 3 and be a subset of (1, 2, 3), got {list(stages)}.")
        self.bundle_root = Path(bundle_root)
        self.workdir = Path(workdir)
        self.stages = sorted(stages)
        self.epochs = {"lesion": 40, "union": 40, "attribute": 40, **(epochs or {})}
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        for switch in ("crop", "use_predicted_lesion", "augment", "freeze_encoder", "make_synthetic", "resume"):
            if switch in self.overrides:
                self.overrides[switch] = as_bool(self.overrides[switch], switch)

    @property
    def label(self) -> str:
        return run_label(self.stages, self.overrides)

    def dataset(self) -> str:
        """The dataset folder (real, or the synthetic one generated on first use)."""
        synthetic_dir = str(self.bundle_root / "data" / "isic2018_synthetic")
        return prepare_dataset(
            self.overrides.get("dataset_dir", synthetic_dir),
            synthetic_dir,
            self.overrides.get("synthetic", {"n": 60, "size": [384, 512], "seed": 0}),
            self.overrides.get("make_synthetic", False),
        )

    def _common(self, fold: int) -> dict:
        run_dir = self.workdir / f"fold{fold}"
        return {
            "dataset_dir": self.dataset(),
            "fold": fold,
            "models_dir": str(run_dir / "models"),
            "output_dir": str(run_dir / "eval"),
        }

    @property
    def crop(self) -> bool:
        return 1 in self.stages and as_bool(self.overrides.get("crop", True), "crop")

    @property
    def archs(self) -> list[str]:
        return list(self.overrides.get("archs", ["unet", "linknet"]))

    def plan(self, fold: int = 0) -> list[tuple[str, list[str], dict]]:
        """
        The bundle runs of round ``fold`` in order, ``(stage name, configs, overrides)`` each: ``lesion`` and
        ``predict_lesion`` (stage 1), ``union/<arch>`` (stage 2), ``attribute/<name>/<arch>`` (stage 3),
        ``assemble`` and ``evaluate``.
        """
        common = self._common(fold)
        runs: list[tuple[str, list[str], dict]] = []
        if self.crop:
            runs.append(("lesion", ["train_lesion.json"], {"max_epochs": self.epochs["lesion"], **common}))
            runs.append(("predict_lesion", ["predict_lesion.json"], dict(common)))
        if 2 in self.stages:
            for arch in self.archs:
                union = {"arch": arch, "max_epochs": self.epochs["union"], "crop": self.crop, **common}
                runs.append((f"union/{arch}", ["train_union.json"], union))
        for name in attributes_of(common["dataset_dir"]):
            for arch in self.archs:
                attribute = {"arch": arch, "attribute": name, "from_union": 2 in self.stages}
                attribute.update(max_epochs=self.epochs["attribute"], crop=self.crop, **common)
                runs.append((f"attribute/{name}/{arch}", ["train_attribute.json"], attribute))
        evals = common.pop("output_dir")  # the runs above hold copies
        runs.append(("assemble", ["assemble.json"], {"crop": self.crop, **common}))
        evaluate = {**common, "output_dir": f"{evals}/cascade", "scores_dir": evals, "run_label": self.label}
        runs.append(("evaluate", ["inference.json", "evaluate.json"], evaluate))
        return runs

    def _run(self, fold: int, runs: Sequence[tuple[str, list[str], dict]]) -> None:
        """
        Run ``runs`` (from :meth:`plan`) in order, skipping those ``<workdir>/fold<k>/stages.json`` records finished
        with the same configs and settings, until one has to run: from there on every run starts from scratch. The
        one that has to run resumes from its last checkpoint when it was started with the same settings and never
        finished (a killed run). The record is written atomically before and after each run.
        """
        path = self.workdir / f"fold{fold}" / STAGES_RECORD
        record = json.loads(path.read_text()) if path.is_file() else {}
        redo = not self.overrides.get("resume", True)
        for i, (name, configs, override) in enumerate(runs):
            given = {k: v for k, v in {**self.overrides, **override}.items() if k != "resume"}
            settings = json.loads(json.dumps({"configs": configs, **given}, default=str))
            entry = record.get(name)
            same = not redo and entry is not None and entry["settings"] == settings
            if same and entry["finished"]:
                logger.info("stage %s of fold %d already finished (%s): skipped", name, fold, path)
                continue
            redo = True
            before = {n for n, _, _ in runs[:i]}
            record = {
                **{k: v for k, v in record.items() if k in before},
                name: {"settings": settings, "finished": False},
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(json.dumps(record, indent=2), path)
            run_bundle(self.bundle_root, ["common.json", *configs], **given, resume=same)
            record[name]["finished"] = True
            write_text_atomic(json.dumps(record, indent=2), path)

    def train_pretext(self, fold: int = 0) -> None:
        """Stages 1 and 2 of round ``fold`` (those in ``stages``): the Segment-Net and its lesion masks of the
        training folds, then the union segmenters."""
        self._run(fold, [r for r in self.plan(fold) if r[0].split("/")[0] in ("lesion", "predict_lesion", "union")])

    def run_fold(self, fold: int = 0) -> dict:
        """Train every stage on round ``fold``, assemble and evaluate the cascade; returns the ISIC Task 2 scores
        (also written to ``<workdir>/fold<k>/eval/attribute_scores.{md,csv,json}``)."""
        runs = self.plan(fold)
        self._run(fold, runs)
        return json.loads((Path(runs[-1][2]["scores_dir"]) / "attribute_scores.json").read_text())
