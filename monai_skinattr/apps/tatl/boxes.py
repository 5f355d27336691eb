"""How well the lesion boxes that crop TATL's photos agree with the ground-truth lesion boxes, in training and when
scored (the lesion-source measurement of the ``lesion_sources`` experiment)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from monai_skinattr.data.images import read_mask
from monai_skinattr.transforms.array import lesion_boxes

from .transforms import cascade_outputs, with_lesions

__all__ = ["box_ious", "crop_box_agreement"]


def _box(path: str | Path, lesion_size: Sequence[int], offset: int) -> torch.Tensor:
    """The lesion box of mask file ``path`` on the ``lesion_size`` grid (nearest resize), as ``[x0, y0, x1, y1]``."""
    mask = torch.from_numpy(read_mask(path)).float()[None, None]
    mask = F.interpolate(mask, size=tuple(lesion_size), mode="nearest").bool()
    y0, x0, y1, x1 = lesion_boxes(mask, offset)[0].tolist()
    return torch.tensor([x0, y0, x1, y1], dtype=torch.float64)


def box_ious(
    predicted: Sequence[str | Path], truth: Sequence[str | Path], lesion_size: Sequence[int], offset: int
) -> np.ndarray:
    """
    Per photo, the IoU of the lesion box of a predicted mask with that of its ground-truth mask: both boxes as TATL
    cuts them (:func:`~monai_skinattr.transforms.array.lesion_boxes`, grown by ``offset`` pixels of the
    ``lesion_size`` grid), compared with torchvision's ``box_iou``.

    .. code-block:: python

        box_ious(["pred/ISIC_0000000_segmentation.png"], ["gt/ISIC_0000000_segmentation.png"], [384, 512], 40)
    """
    if len(predicted) != len(truth) or not predicted:
        raise ValueError(f"need as many predicted as ground-truth masks (at least one), got {len(predicted)} and "
                         f"{len(truth)}.")  # fmt: skip
    pred = torch.stack([_box(p, lesion_size, offset) for p in predicted])
    true = torch.stack([_box(t, lesion_size, offset) for t in truth])
    return box_iou(pred, true).diagonal().numpy()


def crop_box_agreement(
    run_dir: str | Path,
    training: Sequence[dict],
    scored: Sequence[dict],
    lesion_size: Sequence[int],
    offset: int,
    predicted_crops: bool = True,
) -> dict[str, float]:
    """
    One TATL round's box agreement: the mean box IoU (:func:`box_ious`) with the ground truth of the boxes that cut
    its ``training`` photos (the stage-1 masks in ``<run_dir>/eval/lesions``; 1.0 when ``predicted_crops`` is false:
    ground-truth crops) and of the boxes the cascade cut from its ``scored`` photos
    (``<run_dir>/eval/cascade/lesion``). A training mean above the scored one: the training crops were cleaner
    than the crops the scored photos got.
    """
    run_dir = Path(run_dir)
    crops = with_lesions(training, run_dir / "eval" / "lesions" if predicted_crops else "")  # what stages 2-3 cut
    cascade = [cascade_outputs(run_dir / "eval" / "cascade", e["id"], ["lesion"])["lesion"] for e in scored]
    train = box_ious([e["lesion"] for e in crops], [e["lesion"] for e in training], lesion_size, offset)
    test = box_ious(cascade, [e["lesion"] for e in scored], lesion_size, offset)
    return {"training": float(train.mean()), "scored": float(test.mean())}
