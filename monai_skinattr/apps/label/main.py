"""The MONAI Label app: the TATL bundle's maps for annotators, fine-tuning on their labels, the next photo to label."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.random import Random

from monai_skinattr.apps.tatl import cascade_settings

from .datastore import TATLDatastore
from .infer import TATLCascadeTask, TATLMapTask
from .strategies import LesionBoxEntropy
from .train import TATLTrainTask

__all__ = ["TATLLabelApp"]


class TATLLabelApp(MONAILabelApp):
    """
    MONAI Label app for TATL (Nguyen et al., MedIA 2022) on a folder of dermoscopy photos. Models: ``lesion``,
    ``union`` and one per attribute of the served cascade (:class:`.infer.TATLMapTask`), all from one cascade pass
    per photo; trainer ``tatl`` (:class:`.train.TATLTrainTask`); strategies ``entropy``
    (:class:`.strategies.LesionBoxEntropy`) and ``random``. ``/info`` publishes the annotated masks' label values as
    ``labels`` (``lesion`` 1, the attributes from 3, as the maps give them; the union is derived, not annotated) and
    the accepted label tags as ``label_tags``: a label map under MONAI Label's default tag ``final``, or one mask
    under its name (:class:`.datastore.TATLDatastore`). Malformed requests (unknown model, strategy or image) are
    answered 404 with the choices.

    Configuration (``--conf key value``): ``bundle`` — the TATL bundle folder whose ``models/model.pt`` (an assembled
    cascade) is served and replaced by training (required); ``models`` — ``all`` (default) or a comma-separated
    subset of the maps; ``cache_mb`` — memory for recent cascade passes (default 1024); ``infer_wait_s`` — the longest
    a request waits for its turn at the cascade before it is answered 503 (default 60).

    .. code-block:: bash

        python -m monai_skinattr.apps.label init tatl_app
        monailabel start_server --app tatl_app --studies studies --conf bundle bundles/tatl --conf models all \\
            --uvicorn_app monai_skinattr.apps.label.server:app
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        if not conf.get("bundle"):
            raise ValueError("pass the TATL bundle to serve: --conf bundle <folder with models/model.pt>")
        self.bundle = Path(conf["bundle"]).expanduser().resolve()
        if not (self.bundle / "models" / "model.pt").is_file():
            raise FileNotFoundError(
                f"{self.bundle / 'models' / 'model.pt'} does not exist: the app serves an assembled TATL cascade "
                "(configs/assemble.json writes it, with cascade.json, into the bundle's models/)"
            )
        self.attributes = list(cascade_settings(self.bundle / "models")["attributes"])
        self.maps = ["lesion", "union", *self.attributes]
        wanted = conf.get("models", "all")
        self.served = self.maps if wanted == "all" else [m.strip() for m in wanted.split(",") if m.strip()]
        unknown = sorted(set(self.served) - set(self.maps))
        if unknown or not self.served:
            raise ValueError(f"--conf models: {unknown or wanted!r} not among the cascade's maps {self.maps} or 'all'")
        #: the annotated masks and their label values, as the maps' (the union is derived, not annotated)
        self.label_values = {name: i + 1 for i, name in enumerate(self.maps) if name != "union"}
        metadata = json.loads((self.bundle / "configs" / "metadata.json").read_text())
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="TATL skin attributes",
            description="Lesion, attribute-agnostic (union) and attribute masks of dermoscopy photos (TATL cascade)",
            version=metadata.get("version", ""),
            labels=self.label_values,
        )

    def init_datastore(self) -> Datastore:
        if self.studies.startswith(("http://", "https://")):
            raise ValueError(f"the TATL app serves a local folder of photos, not '{self.studies}'")
        return TATLDatastore(
            self.studies,
            values=self.label_values,
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, InferTask]:
        cache_mb, max_wait_s = float(self.conf.get("cache_mb", 1024)), float(self.conf.get("infer_wait_s", 60))
        self.cascade = TATLCascadeTask(self.bundle, self.conf, cache_mb, max_wait_s)
        return {name: TATLMapTask(self.cascade, name) for name in self.served}

    def init_trainers(self) -> dict[str, TrainTask]:
        return {"tatl": TATLTrainTask(self.bundle)}

    def init_strategies(self) -> dict[str, Strategy]:
        self.entropy = LesionBoxEntropy(self.cascade)
        return {"entropy": self.entropy, "random": Random()}

    def on_init_complete(self) -> None:
        """The server is up: the active-learning scores are computed in the background from now on."""
        super().on_init_complete()
        self.entropy.start(self.datastore())

    def info(self) -> dict[str, Any]:
        """MONAI Label's ``/info``, with ``label_tags``: the tags ``/datastore/label`` accepts and what each means."""
        return {**super().info(), "label_tags": self._datastore.label_tags()}

    def infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> dict[str, Any]:
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(404, f"model '{model}' is not served; models: {', '.join(self._infers)}")
        image = request.get("image")
        store = datastore or self.datastore()
        if isinstance(image, str) and not os.path.exists(image) and not store.get_image_uri(image):
            raise HTTPException(404, f"image '{image}' is not in the datastore")
        return super().infer(request, datastore)

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        strategy = request.get("strategy") or "random"
        if strategy not in self._strategies:
            raise HTTPException(404, f"strategy '{strategy}' does not exist; strategies: {', '.join(self._strategies)}")
        return super().next_sample(request)
