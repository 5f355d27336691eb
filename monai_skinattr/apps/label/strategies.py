"""Which photo to label next: the one whose union and attribute maps the served cascade is least sure about."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
from pathlib import Path
from typing import Any

import torch
from fastapi import HTTPException
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.utils.others.generic import name_to_device

from monai_skinattr.transforms import lesion_boxes
from monai_skinattr.utils.io import write_text_atomic

from .infer import TATLCascadeTask

__all__ = ["LesionBoxEntropy", "lesion_box_entropy", "SCORES_FILE"]

logger = logging.getLogger(__name__)

#: the scores of the served checkpoint, beside ``models/model.pt``
SCORES_FILE = "label_entropy.json"


def lesion_box_entropy(probs: torch.Tensor, threshold: float = 0.5) -> float:
    """
    The mean binary entropy, in bits (0: certain, 1: p = 0.5 everywhere), of the union and attribute maps
    (channels 2 onwards of the cascade's ``(3 + A, H, W)`` probabilities) inside the bounding box of the predicted
    lesion (lesion probability >= ``threshold``; the whole photo when no lesion is found). The box keeps the score
    from being diluted by the skin around the lesion, where the cascade pastes no maps.

    .. code-block:: python

        probs = torch.zeros(4, 8, 8); probs[1, 2:4, 2:6] = 1; probs[2:, 2:4, 2:6] = 0.5
        lesion_box_entropy(probs)  # 1.0
    """
    row0, col0, row1, col1 = lesion_boxes(probs[None, 1:2] >= threshold, 0)[0].tolist()
    maps = probs[2:, row0:row1, col0:col1].double()
    bits = (torch.special.entr(maps) + torch.special.entr(1 - maps)) / math.log(2)
    return float(bits.mean())


class LesionBoxEntropy(Strategy):
    """
    Active learning by uncertainty: of the photos nobody has labelled yet, the one with the highest
    :func:`lesion_box_entropy` under the served cascade. The scores are computed in the background (:meth:`start`:
    after start-up, for new photos, and again for every photo after training replaces the checkpoint), one photo at
    a time and only while no request waits for the cascade, and kept on disk (``models/label_entropy.json``, per
    checkpoint), so a restart does not score again. A request answers at once from the scores that are ready: the
    answer carries ``entropy``, ``scored`` and ``unlabelled``; while none is ready it is a random unlabelled photo,
    and says so (``"strategy": "random"`` and why). Photos that cannot be read are skipped (and logged).

    .. code-block:: python

        strategy = LesionBoxEntropy(cascade)
        strategy.start(datastore)
        strategy({"strategy": "entropy"}, datastore)  # {'id': 'ISIC_0000003', 'entropy': 0.41, 'scored': 12, ...}

    Args:
        cascade: the served cascade.
        poll_s: how often the background scorer looks for new photos or a new checkpoint.
    """

    def __init__(self, cascade: TATLCascadeTask, poll_s: float = 2.0) -> None:
        super().__init__("Unlabelled photo with the most uncertain union/attribute maps (mean entropy in lesion box)")
        self.cascade = cascade
        self.poll_s = poll_s
        self.path = Path(cascade.get_path()).parent / SCORES_FILE
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpoint, self._scores = self._load()

    def _load(self) -> tuple[str, dict[str, float]]:
        checkpoint = self.cascade.checkpoint()
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("checkpoint") == checkpoint:
                return checkpoint, dict(saved["scores"])
        return checkpoint, {}

    @staticmethod
    def _photo_key(path: str) -> str:
        stat = os.stat(path)
        return f"{Path(path).name}-{stat.st_mtime_ns}-{stat.st_size}"

    def _ready(self, datastore: Datastore) -> tuple[dict[str, float], list[str]]:
        """The scores ready for the unlabelled photos (id -> entropy) under the served checkpoint, and the ids."""
        unlabelled = sorted(datastore.get_unlabeled_images())
        checkpoint = self.cascade.checkpoint()
        with self._lock:
            if self._checkpoint != checkpoint:
                self._checkpoint, self._scores = checkpoint, {}  # new weights: every photo again
            scores = dict(self._scores)
        ready = {}
        for image_id in unlabelled:
            path = datastore.get_image_uri(image_id)
            key = self._photo_key(path) if path and os.path.isfile(path) else None
            if key in scores:
                ready[image_id] = scores[key]
        return ready, unlabelled

    def score_pending(self, datastore: Datastore) -> int:
        """Score the unlabelled photos without a score under the served checkpoint, one at a time, each when no
        request waits for the cascade; returns how many were scored."""
        ready, unlabelled = self._ready(datastore)
        done = 0
        for image_id in unlabelled:
            if image_id in ready or self._stop.is_set():
                continue
            while not self.cascade.idle() and not self._stop.is_set():
                self._stop.wait(0.05)
            path = datastore.get_image_uri(image_id)
            try:
                key, checkpoint = self._photo_key(path), self.cascade.checkpoint()
                probs = self.cascade.probabilities(path, name_to_device(None), request=False)
                score = self.cascade.in_pass_thread(lesion_box_entropy, probs, self.cascade.threshold)
            except (OSError, HTTPException) as e:
                logger.warning("active learning skips '%s': %s", image_id, getattr(e, "detail", e))
                continue
            with self._lock:
                if checkpoint != self._checkpoint:
                    return done  # the checkpoint changed during the pass: start over with the new one
                self._scores[key] = score
                write_text_atomic(json.dumps({"checkpoint": checkpoint, "scores": self._scores}), self.path)
            done += 1
        return done

    def start(self, datastore: Datastore) -> threading.Thread:
        """Score in a background thread from now on (until :meth:`stop`)."""

        def run() -> None:
            while not self._stop.is_set():
                try:
                    if not self.score_pending(datastore):
                        self._stop.wait(self.poll_s)
                except Exception:  # the server goes on; the next round tries again
                    logger.exception("active-learning scores")
                    self._stop.wait(self.poll_s)

        thread = threading.Thread(target=run, name="tatl-entropy-scores", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        ready, unlabelled = self._ready(datastore)
        if not unlabelled:
            return None
        counts = {"scored": len(ready), "unlabelled": len(unlabelled)}
        if not ready:
            reason = "no entropy score is ready yet (they are computed in the background after start-up and training)"
            return {"id": random.choice(unlabelled), "strategy": "random", "reason": reason, **counts}
        best = max(ready, key=ready.get)
        logger.info("entropy: %s (%.4f) of %d scored, %d unlabelled photos", best, ready[best], *counts.values())
        return {"id": best, "entropy": ready[best], **counts}
