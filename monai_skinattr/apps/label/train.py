"""Fine-tuning the served TATL cascade on the labels annotators submitted, with the bundle's own stage configs."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import partition_dataset
from monailabel.interfaces.tasks.train import TrainTask

from monai_skinattr.apps.tatl import assemble_cascade, cascade_settings, stage_checkpoints
from monai_skinattr.runner import BundleRun, Plan, run_plan
from monai_skinattr.utils.io import file_sha256, write_text_atomic

from .datastore import TATLDatastore
from .versions import keep_version

__all__ = ["TATLTrainTask", "partition", "split_cascade", "stage_checkpoints", "STATS_FILE", "RUNNING_FILE"]

logger = logging.getLogger(__name__)

#: what the last training recorded, beside the served ``models/model.pt``
STATS_FILE = "label_train.json"
#: a training under way (its start, process and options), beside ``models/model.pt``; removed when it ends
RUNNING_FILE = "label_train_running.json"


def split_cascade(checkpoint: str | Path, settings: Mapping, models_dir: str | Path) -> list[str]:
    """
    The inverse of ``assemble_cascade``: write each trained member of an assembled cascade ``checkpoint`` where its
    stage config keeps it under ``models_dir`` (:func:`stage_checkpoints`), so fine-tuning starts from the served
    weights. Members ``settings["untrained"]`` lists are not written. Returns the files written.

    .. code-block:: python

        split_cascade("bundles/tatl/models/model.pt", cascade_settings("bundles/tatl/models"), "work/models")
        # ['lesion/model.pt', 'union/unet/model.pt', 'attributes/globules/unet/model.pt', ...]
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    written = []
    for prefix, rel in stage_checkpoints(settings).items():
        if rel in settings.get("untrained", []):
            continue
        member = {k.removeprefix(prefix + "."): v for k, v in state.items() if k.startswith(prefix + ".")}
        path = Path(models_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(member, path)
        written.append(rel)
    return written


def partition(items: Sequence[dict], val_split: float, seed: int = 0) -> dict[str, list[dict]]:
    """
    MONAI Label's split of the labelled photos (``monai.data.partition_dataset``, shuffled): ``"training"`` and
    ``"validation"`` (``val_split`` of them) datalists for the stage configs. When that leaves either empty (fewer
    than three photos at 0.2), every photo trains and the checkpoint is selected on the training photos.

    .. code-block:: python

        [len(v) for v in partition(datastore.labelled_items(), 0.2).values()]  # [8, 2, 0] for 10 photos
    """
    items = list(items)
    train, val = partition_dataset(items, ratios=[1 - val_split, val_split], shuffle=True, seed=seed)
    if not train or not val:
        logger.warning("%d labelled photo(s): too few to hold some out, selecting on the training photos", len(items))
        train, val = items, items
    return {"training": train, "validation": val, "test": []}


class TATLTrainTask(TrainTask):
    """
    Fine-tune the served TATL cascade on the labels submitted to the datastore, starting from the served weights,
    with the bundle's own stage configs (``common.json`` + ``train_*.json``, the cascade's sizes and shapes from
    ``models/cascade.json``): the Segment-Net on the photos with a ``lesion`` label; on the photos with every
    attribute's label, their predicted lesions (``predict_lesion.json``), the union segmenters and every attribute's
    segmenters. Stages without new labels keep their served weights. The members are assembled into a new cascade
    that replaces ``models/model.pt`` atomically; the server serves it from the next request on. The model it
    replaces is kept as the next ``models/versions/<n>/`` (:mod:`.versions`; ``python -m monai_skinattr.apps.label
    restore <bundle> <n>`` serves it again). A training under way is recorded in ``models/label_train_running.json``;
    one that a crash or kill ended is reported by :meth:`interrupted` (and ``/info``'s ``train_stats``, and
    ``/train/`` after a restart, as ``INTERRUPTED``). Each stage selects
    its checkpoint on ``val_split`` of its photos (:func:`partition`). The stages are one plan on the library stage
    runner (``monai_skinattr.runner``), every run from scratch (``resume=False``); the work happens in a temporary
    folder under ``models/``, removed afterwards.

    .. code-block:: python

        task = TATLTrainTask("bundles/tatl")
        task({"max_epochs": 5}, datastore)  # what was trained, also in models/label_train.json

    Args:
        bundle: the served TATL bundle folder.
    """

    def __init__(self, bundle: str | Path) -> None:
        super().__init__("Fine-tune the TATL cascade (lesion, union, attribute segmenters) on the submitted labels")
        self.bundle = Path(bundle)
        self.models = self.bundle / "models"

    def config(self) -> dict[str, Any]:
        return {"max_epochs": 10, "val_split": 0.2, "batch_size": 4, "learning_rate": 0.01}

    def stats(self) -> dict[str, Any]:
        path = self.models / STATS_FILE
        stats = json.loads(path.read_text()) if path.is_file() else {}
        interrupted = self.interrupted()
        return {**stats, "interrupted": interrupted} if interrupted else stats

    def interrupted(self) -> dict[str, Any] | None:
        """The record of a training that started and neither finished nor failed (its process is gone), or None."""
        path = self.models / RUNNING_FILE
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        try:
            os.kill(int(record["pid"]), 0)
            return None  # still under way
        except ProcessLookupError:
            return record
        except PermissionError:  # a process of another user took the id: ours is gone
            return record

    def __call__(self, request: Mapping[str, Any], datastore: TATLDatastore) -> dict[str, Any]:
        options = {**self.config(), **{k: request[k] for k in self.config() if k in request}}
        settings = cascade_settings(self.models)
        attributes = list(settings["attributes"])
        items = datastore.labelled_items()
        lesion = [e for e in items if "lesion" in e]
        complete = [e for e in items if all(a in e for a in attributes)]
        if not lesion and not complete:
            raise ValueError(
                f"nothing to train on: submit label maps (the default tag 'final'), lesion masks (tag 'lesion') or, "
                f"for a photo, every attribute's mask (tags {attributes}); labelled photos: {[e['id'] for e in items]}"
            )
        logger.info("training on %d lesion label(s), %d photo(s) with every attribute", len(lesion), len(complete))
        for stale in self.models.glob(".train-*"):  # the work folder of an interrupted training
            shutil.rmtree(stale, ignore_errors=True)
        started = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid(), **options}
        write_text_atomic(json.dumps(started, indent=2), self.models / RUNNING_FILE)
        try:
            record = self._train(options, settings, attributes, lesion, complete)
        finally:
            (self.models / RUNNING_FILE).unlink(missing_ok=True)
        logger.info("serving the fine-tuned cascade %s", self.models / "model.pt")
        return record

    def _train(
        self, options: Mapping, settings: Mapping, attributes: list[str], lesion: list[dict], complete: list[dict]
    ) -> dict[str, Any]:
        """Train the stages in a work folder under ``models/``, keep the served model as a version, serve the new."""
        with tempfile.TemporaryDirectory(prefix=".train-", dir=self.models) as tmp:
            work = Path(tmp) / "models"
            split_cascade(self.models / "model.pt", settings, work)
            common = {
                "models_dir": str(work),
                "output_dir": str(Path(tmp) / "eval"),
                "attributes": attributes,
                "archs": list(settings["archs"]),
                "lesion_arch": settings["lesion_arch"],
                "encoder": settings["encoder"],
                "normalization": settings["normalization"],
                "lesion_size": list(settings["lesion_size"]),
                "photo_size": list(settings["photo_size"]),  # photos sampled as the served cascade's were
                "spatial_size": list(settings["crop_size"]),
                "offset": settings["offset"],
                "crop": settings["crop"],
                "lesion_source": "segment_net",  # crops from the Segment-Net trained on the annotators' lesions
                "max_epochs": int(options["max_epochs"]),
                "batch_size": int(options["batch_size"]),
                "learning_rate": float(options["learning_rate"]),
            }
            runs = [
                BundleRun(name, ["common.json", *configs], {**common, **override})
                for name, configs, override in self._plan(work, settings, lesion, complete, float(options["val_split"]))
            ]
            run_plan(Plan(self.bundle, tmp, runs), resume=False)  # every stage from the served weights
            build = {k: v for k, v in settings.items() if k != "untrained"}
            new = assemble_cascade(work, build)
            digest = file_sha256(new)
            previous = keep_version(self.models)
            os.replace(work / "cascade.json", self.models / "cascade.json")
            os.replace(new, self.models / "model.pt")
        record = {
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "checkpoint_sha256": digest,
            "previous_version": previous,
            "stages": [run.name for run in runs if run.name != "predict_lesion"],
            "lesion_labels": [e["id"] for e in lesion],
            "attribute_labels": [e["id"] for e in complete],
            **options,
        }
        write_text_atomic(json.dumps(record, indent=2), self.models / STATS_FILE)
        return record

    @staticmethod
    def _plan(
        work: Path, settings: Mapping, lesion: list[dict], complete: list[dict], val_split: float
    ) -> list[tuple[str, list[str], dict]]:
        """The stage runs, ``(name, configs, overrides)`` each, in TATL's order."""

        def start(rel: str) -> str:  # a stage left untrained in the served cascade starts from scratch
            return str(work / rel) if (work / rel).is_file() else ""

        runs: list[tuple[str, list[str], dict]] = []
        if lesion:
            override = {"init_checkpoint": start("lesion/model.pt"), "datalists": partition(lesion, val_split)}
            runs.append(("lesion", ["train_lesion.json"], override))
        if complete:
            data = partition(complete, val_split)
            if settings["crop"]:
                runs.append(("predict_lesion", ["predict_lesion.json"], {"datalists": data}))
            for arch in settings["archs"]:
                override = {"arch": arch, "init_checkpoint": start(f"union/{arch}/model.pt")}
                runs.append((f"union/{arch}", ["train_union.json"], {**override, "datalists": data}))
            for name in settings["attributes"]:
                for arch in settings["archs"]:
                    init = start(f"attributes/{name}/{arch}/model.pt")
                    override = {"arch": arch, "attribute": name, "from_union": False, "init_checkpoint": init}
                    runs.append((f"attribute/{name}/{arch}", ["train_attribute.json"], {**override, "datalists": data}))
        return runs
