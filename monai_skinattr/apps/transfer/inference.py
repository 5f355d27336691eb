"""Segmenting new images with a downstream network: what to segment, how (slice by slice, or in tiles), and the masks
written back at the original geometry.

.. code-block:: python

    from monai_skinattr.apps.transfer import inference_datalist, inferer

    images = inference_datalist("idrid", "/data/new_photos")
    pred = inferer("idrid")(image[None], network)  # the 1120x2240 image from 50 tiles of 224
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer
from monai.transforms import Activationsd, AsDiscreted, Invertd, SaveImaged, Transform

from ...data import DatasetLayoutError, acdc_datalist, covidqu_datalist, idrid_datalist
from ...transforms import SaveMaskd
from .datasets import dataset_spec

__all__ = ["inference_datalist", "inference_postprocessing", "inferer"]


def inference_datalist(dataset_name: str, folder: str | Path) -> list[dict]:
    """
    ``[{"image"}]`` to segment: the test images of ``folder`` when it holds ``dataset_name``'s layout, else the
    image files directly in ``folder`` (ACDC: ``.nii.gz`` / ``.nii`` frames, not ``_gt`` nor ``_4d``; COVID-QU-Ex and
    IDRiD: ``.png`` / ``.jpg``).

    Raises:
        DatasetLayoutError: ``folder`` does not exist or holds nothing to segment.
    """
    dataset_spec(dataset_name)
    root = Path(folder)
    if not root.is_dir():
        raise DatasetLayoutError(root, ["folder of images to segment does not exist"])
    readers = {
        "acdc": lambda: acdc_datalist(root, "testing", validate=False),
        "covidqu": lambda: covidqu_datalist(root, "test", validate=False),
        "idrid": lambda: idrid_datalist(root, "MA", "testing", missing="skip", validate=False),
    }
    try:
        return [{"image": e["image"]} for e in readers[dataset_name]()]
    except (FileNotFoundError, DatasetLayoutError):
        pass
    if dataset_name == "acdc":
        files = [p for p in root.iterdir() if p.name.endswith((".nii.gz", ".nii"))]
        files = [p for p in files if not p.name.split(".")[0].endswith(("_gt", "_4d"))]
    else:
        files = [p for p in root.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    if not files:
        raise DatasetLayoutError(root, [f"no {dataset_name} test split and no image files to segment"])
    return [{"image": str(p)} for p in sorted(files)]


def inferer(dataset_name: str, spatial_size: Sequence[int] = (224, 224), sw_batch_size: int = 24) -> Inferer:
    """
    How :func:`preprocessing`'s ``"infer"`` output is segmented: an ACDC frame slice by slice (MONAI's
    ``SliceInferer``); a 2D image in non-overlapping ``spatial_size`` windows stitched back (MONAI's
    ``SlidingWindowInferer``, overlap 0: a 1120x2240 IDRiD image is exactly the thesis' 50 tiles of 224; a
    224x224 image is one window).
    """
    if dataset_name == "acdc":
        return SliceInferer(roi_size=spatial_size, spatial_dim=2, sw_batch_size=sw_batch_size, mode="constant")
    return SlidingWindowInferer(roi_size=spatial_size, overlap=0.0, sw_batch_size=sw_batch_size, mode="constant")


def inference_postprocessing(
    dataset_name: str, preprocessing: Transform, output_dir: str | Path, num_classes: int
) -> list[Transform]:
    """
    Predictions mapped back to the original image (MONAI's ``Invertd`` of ``preprocessing``) and saved in
    ``output_dir``: ACDC label volumes as ``<frame>_seg.nii.gz`` (0 background, 1 RV, 2 MYO, 3 LV) with the frame's
    geometry; binary masks as 0/255 ``<image>_mask.png``.
    """
    if num_classes > 2:
        return [
            AsDiscreted("pred", argmax=True),
            Invertd("pred", transform=preprocessing, orig_keys="image", nearest_interp=True, to_tensor=True),
            SaveImaged(
                "pred",
                output_dir=str(output_dir),
                output_postfix="seg",
                output_dtype=np.uint8,
                separate_folder=False,
                resample=False,
                print_log=False,
            ),
        ]
    return [
        Activationsd("pred", sigmoid=True),
        Invertd("pred", transform=preprocessing, orig_keys="image", nearest_interp=False, to_tensor=True),
        AsDiscreted("pred", threshold=0.5),
        SaveMaskd("pred", output_dir=output_dir, suffix="_mask.png"),
    ]
