"""Which photo to label next: the one whose union and attribute maps the served cascade is least sure about."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from fastapi import HTTPException
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.utils.others.generic import name_to_device

from monai_skinattr.transforms import lesion_boxes

from .infer import TATLCascadeTask

__all__ = ["LesionBoxEntropy", "lesion_box_entropy"]

logger = logging.getLogger(__name__)


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
    :func:`lesion_box_entropy` under the served cascade; the answer carries its ``entropy``. Scores are kept per
    photo and checkpoint, so after the first request only new photos and new weights cost a cascade pass. Photos
    that cannot be read are skipped (and logged).

    .. code-block:: python

        strategy = LesionBoxEntropy(cascade)
        strategy({"strategy": "entropy"}, datastore)  # {'id': 'ISIC_0000003', 'entropy': 0.41}
    """

    def __init__(self, cascade: TATLCascadeTask) -> None:
        super().__init__("Unlabelled photo with the most uncertain union/attribute maps (mean entropy in lesion box)")
        self.cascade = cascade
        self._scores: dict[tuple, float] = {}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        device = name_to_device(request.get("device"))
        scores = {}
        for image_id in sorted(datastore.get_unlabeled_images()):
            path = datastore.get_image_uri(image_id)
            try:
                key = self.cascade.key(path)
                if key not in self._scores:
                    probs = self.cascade.probabilities(path, device)
                    self._scores[key] = lesion_box_entropy(probs, self.cascade.threshold)
            except (OSError, HTTPException) as e:
                logger.warning("active learning skips '%s': %s", image_id, getattr(e, "detail", e))
                continue
            scores[image_id] = self._scores[key]
        if not scores:
            return None
        best = max(scores, key=scores.get)
        logger.info("entropy: %s (%.4f) of %d unlabelled photos", best, scores[best], len(scores))
        return {"id": best, "entropy": scores[best]}
