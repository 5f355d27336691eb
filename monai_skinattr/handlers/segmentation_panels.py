"""Per-image pictures of a binary segmentation evaluation: overlays beside the ground truth, and error maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ignite.engine import Engine, Events

from ..utils.io import save_image_atomic
from ..visualize import comparison_panel, error_map

__all__ = ["SegmentationPanels"]


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class SegmentationPanels:
    """
    After each evaluator iteration, write for every image of the batch ``<output_dir>/overlays/<id>.png``
    (image | ground truth | prediction, legend below) and ``<output_dir>/errors/<id>.png`` (true positives, false
    positives and false negatives in three colours). Attach to an evaluator whose postprocessing leaves binary
    ``pred`` maps the size of ``label``; the image is shown in whatever range it has (rescaled for display).

    .. code-block:: python

        SegmentationPanels("eval/panels", name="lesion").attach(evaluator)

    Args:
        output_dir: root of ``overlays/`` and ``errors/``.
        name: what the masks show (the legend's label).
        image_key, label_key, pred_key: keys of the batch / output.
        max_images: stop writing after this many images (``None``: all).
    """

    def __init__(
        self,
        output_dir: str | Path,
        name: str = "lesion",
        image_key: str = "image",
        label_key: str = "label",
        pred_key: str = "pred",
        max_images: int | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.name = name
        self.keys = (image_key, label_key, pred_key)
        self.max_images = max_images
        self.written = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        image_key, label_key, pred_key = self.keys
        for item in engine.state.output:
            if self.max_images is not None and self.written >= self.max_images:
                return
            image = np.moveaxis(_numpy(item[image_key]), 0, -1)
            truth, pred = _numpy(item[label_key])[0] > 0.5, _numpy(item[pred_key])[0] > 0.5
            meta = getattr(item[image_key], "meta", {}) or {}
            stem = Path(str(meta.get("filename_or_obj", f"image_{self.written}"))).stem
            panel = comparison_panel(image, {self.name: pred}, {self.name: truth})
            save_image_atomic(panel, self.output_dir / "overlays" / f"{stem}.png")
            save_image_atomic(error_map(image, truth, pred), self.output_dir / "errors" / f"{stem}.png")
            self.written += 1
