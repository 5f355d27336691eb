"""The transfer study's downstream segmentation (thesis ch. 2.3–2.4): datasets and their splits, the preprocessing of
ACDC, COVID-QU-Ex and IDRiD, the Dice the thesis reports, and the network built from a pretrained encoder.

.. code-block:: python

    from monai_skinattr.apps.transfer import downstream_splits, preprocessing

    splits = downstream_splits("acdc", "/data/ACDC/database", "bundles/transfer/data/acdc_synthetic")
    train = preprocessing("acdc", "train")  # load, scale, slice along z, resize to 224x224
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import CacheDataset
from monai.handlers import IgniteMetricHandler, from_engine
from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer
from monai.metrics import ConfusionMatrixMetric, HausdorffDistanceMetric, MeanIoU
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    CastToTyped,
    Compose,
    CopyItemsd,
    EnsureChannelFirstd,
    EnsureTyped,
    Invertd,
    LoadImaged,
    NormalizeIntensityd,
    RandAffined,
    RandFlipd,
    RandRotated,
    RandTorchVisiond,
    RepeatChanneld,
    Resized,
    SaveImaged,
    ScaleIntensityRanged,
    ScaleIntensityRangePercentilesd,
    Transform,
)
from PIL import Image
from torch import nn

from ...data import DatasetLayoutError, acdc_datalist, covidqu_datalist, idrid_datalist, synthetic
from ...data.folds import carve_validation
from ...data.prepare import ensure_synthetic
from ...networks import freeze_encoder, load_stage_weights
from ...transforms import SaveMaskd, SliceVolumed, TileGridd
from ...transforms.pipelines import IMAGENET_MEAN, IMAGENET_STD
from ...utils.io import write_text_atomic

__all__ = [
    "DATASETS",
    "MODES",
    "ClassChannel",
    "HD95Metric",
    "PooledDiceMetric",
    "ValidationLog",
    "augmentation",
    "downstream_splits",
    "eval_postprocessing",
    "expand",
    "inference_datalist",
    "inference_postprocessing",
    "inferer",
    "metric_handlers",
    "prepare_network",
    "preprocessing",
]

#: per dataset: class names (background first), input channels, the splits its synthetic twin writes and the default
#: synthetic parameters (the ``synthetic.make_<name>`` arguments)
DATASETS: dict[str, dict] = {
    "acdc": {
        "classes": ("background", "RV", "MYO", "LV"),
        "channels": 1,
        "splits": ("training", "testing"),
        "make": synthetic.make_acdc,
        "synthetic": {"n": 10, "size": [128, 128, 8], "seed": 0},
    },
    "covidqu": {
        "classes": ("background", "infection"),
        "channels": 1,
        "splits": ("train", "val", "test"),
        "make": synthetic.make_covidqu,
        "synthetic": {"n": 24, "size": [256, 256], "seed": 0},
    },
    "idrid": {
        "classes": ("background", "microaneurysms"),
        "channels": 3,
        "splits": ("training", "testing"),
        "make": synthetic.make_idrid,
        "synthetic": {"n": 6, "size": [224, 448], "seed": 0},
    },
}
#: downstream training modes: every weight, or the decoder (and head) on a frozen encoder
MODES = ("full", "decoder")
#: the thesis' IDRiD geometry: images resized to 1120x2240, training windows of 448 at stride 112 (119 per image)
IDRID_SIZE, IDRID_WINDOW, IDRID_STRIDE = (1120, 2240), 448, 112
#: :func:`preprocessing` stages: training samples before augmentation, validation / test, inference of new images
STAGES = ("train", "eval", "infer")


def _spec(dataset_name: str) -> dict:
    if dataset_name not in DATASETS:
        raise ValueError(f"dataset_name must be one of {list(DATASETS)}, got '{dataset_name}'.")
    return DATASETS[dataset_name]


def downstream_splits(
    dataset_name: str,
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, list[dict]]:
    """
    ``{"training", "validation", "test"}`` datalists of files as the thesis splits them: ACDC = the challenge's
    ED and ES frames, training patients 1–100, test 101–150; COVID-QU-Ex = COVID-19 images with infection masks,
    training = official Train + Val, test = official Test; IDRiD = microaneurysm masks, 54 training and 27 test
    images. ``"validation"`` (``val_fraction`` of the training data, seeded; whole patients for ACDC, balanced over
    the pathology groups) selects checkpoints and is never trained on; the test split is never used for selection.
    ``dataset_dir`` is validated by the dataset's reader; the synthetic twin is generated there when it is the
    bundle's own ``synthetic_dir`` or ``make_synthetic`` is true (``synthetic_params``: ``make_<dataset>``
    arguments, default ``DATASETS[dataset_name]["synthetic"]``).

    .. code-block:: python

        splits = downstream_splits("covidqu", "/data/COVID-QU-Ex", "bundle/data/covidqu_synthetic")
        print({k: len(v) for k, v in splits.items()})  # {'training': 1864, 'validation': 466, 'test': 583}
    """
    spec = _spec(dataset_name)
    params = spec["synthetic"] if synthetic_params is None else synthetic_params
    with idist.one_rank_first():  # under torchrun, rank 0 writes the synthetic twin before the others read it
        root = ensure_synthetic(
            dataset_dir, synthetic_dir, dataset_name, spec["make"], params, make_synthetic, list(spec["splits"])
        )
    if not Path(root).is_dir():
        raise DatasetLayoutError(root, [f"dataset_dir does not exist; expected the {dataset_name} layout"])
    if dataset_name == "acdc":
        train, test = acdc_datalist(root, "training"), acdc_datalist(root, "testing")
        train, val = _carve_patients(train, val_fraction, seed)
    elif dataset_name == "covidqu":
        train = covidqu_datalist(root, "train+val", classes=("COVID-19",))
        test = covidqu_datalist(root, "test", classes=("COVID-19",))
        train, val = carve_validation(train, val_fraction, seed)
    else:
        train, test = idrid_datalist(root, "MA", "training"), idrid_datalist(root, "MA", "testing")
        train, val = carve_validation(train, val_fraction, seed)
    return {"training": train, "validation": val, "test": test}


def _carve_patients(frames: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole ACDC patients (both frames), balanced over the pathology groups."""
    group = {e["patient"]: e.get("group", "") for e in frames}
    names = sorted(set(group.values()))
    rows = [{"patient": p, **{g: int(group[p] == g) for g in names}} for p in sorted(group)]
    _, held = carve_validation(rows, fraction, seed, stratify_by=names if len(names) > 1 else ())
    val = {r["patient"] for r in held}
    return [e for e in frames if e["patient"] not in val], [e for e in frames if e["patient"] in val]


def _grey(image: Image.Image) -> Image.Image:
    return image.convert("L")


def _rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def _load_2d(key: str, converter: Callable[[Image.Image], Image.Image]) -> list[Transform]:
    return [
        LoadImaged(key, reader="PILReader", reverse_indexing=False, image_only=True, converter=converter),
        EnsureChannelFirstd(key),
    ]


def preprocessing(
    dataset_name: str,
    stage: str = "eval",
    spatial_size: Sequence[int] = (224, 224),
    label: bool = True,
    idrid_size: Sequence[int] = IDRID_SIZE,
    idrid_window: int = IDRID_WINDOW,
    idrid_stride: int = IDRID_STRIDE,
) -> list[Transform]:
    """
    The deterministic preprocessing of ``dataset_name``, the same for training, validation, test and inference:

    - ACDC: the NIfTI frame scaled to [0, 1] by its 0–99.5th intensity percentiles, sliced along z
      (:class:`~monai_skinattr.transforms.SliceVolumed`), each slice resized to ``spatial_size``;
    - COVID-QU-Ex: the grey 8-bit X-ray scaled to [0, 1] and resized to ``spatial_size``;
    - IDRiD: the RGB photograph resized to ``idrid_size`` (area averaging); for training cut into
      ``idrid_window`` windows at ``idrid_stride`` (:class:`~monai_skinattr.transforms.TileGridd`, 119 per image
      at the thesis' sizes), kept 8-bit to hold the 6426 windows of the real data in 3.9 GB.

    Images resize bilinearly (IDRiD: by area), labels by nearest neighbour, never interpolated; masks are binarised
    (any non-zero value). ``stage``: ``"train"`` stops there (:func:`augmentation` follows); ``"eval"`` and
    ``"infer"`` add the network input (grey repeated to 3 channels, ImageNet mean/std). ``"infer"`` keeps an ACDC
    frame whole, resized in-plane, for :func:`inferer`'s slice-by-slice inference. Stages returning lists (ACDC
    slices, IDRiD windows) are flattened by :func:`expand` or by the data loader.

    .. code-block:: python

        samples = expand(splits["training"], preprocessing("idrid", "train"))  # 119 windows per image
    """
    spec = _spec(dataset_name)
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got '{stage}'.")
    keys = ["image", "label"] if label else ["image"]
    modes = ["bilinear", "nearest"][: len(keys)]
    if dataset_name == "acdc":
        out: list[Transform] = [
            LoadImaged(keys, image_only=True),
            EnsureChannelFirstd(keys),
            ScaleIntensityRangePercentilesd("image", lower=0.0, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
        ]
        if stage == "infer":
            out.append(Resized("image", spatial_size=(*spatial_size, -1), mode="bilinear"))
        else:
            out += [SliceVolumed(keys, axis=-1), Resized(keys, spatial_size=spatial_size, mode=modes)]
    elif dataset_name == "covidqu":
        out = _load_2d("image", _grey) + (_load_2d("label", _grey) if label else [])
        out += [
            ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
            Resized(keys, spatial_size=spatial_size, mode=modes),
        ]
    else:
        out = _load_2d("image", _rgb) + (_load_2d("label", _grey) if label else [])
        out.append(Resized(keys, spatial_size=idrid_size, mode=["area", "nearest"][: len(keys)]))
    if label and dataset_name != "acdc":
        out.append(AsDiscreted("label", threshold=0.5))
    if stage == "train":
        if dataset_name == "idrid":
            out += [CastToTyped(keys, dtype=torch.uint8), TileGridd(keys, window=idrid_window, stride=idrid_stride)]
        return out
    if dataset_name == "idrid":
        out.append(ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True))
    return out + _network_input(spec["channels"], keys)


def augmentation(
    dataset_name: str, spatial_size: Sequence[int] = (224, 224), idrid_window: int = IDRID_WINDOW
) -> list[Transform]:
    """
    The thesis' random augmentation of a training sample from :func:`preprocessing` (``"train"``), then the network
    input: rotation by an angle drawn from U[0, π] (labels nearest, zero padding) and a vertical flip with
    probability 0.5. IDRiD: the rotation picks a ``spatial_size`` square turned by that angle and shifted at random
    inside the window (never leaving it; MONAI ``RandAffined``), then colour jitter (torchvision's ``ColorJitter``:
    brightness 0.1, contrast 0.05, saturation 0.1, hue 0.05 — the values of the thesis authors' released configs,
    which the thesis text lost).

    .. code-block:: python

        train_ds = Dataset(expand(splits["training"], preprocessing("acdc", "train")), Compose(augmentation("acdc")))
    """
    spec = _spec(dataset_name)
    keys = ["image", "label"]
    if dataset_name == "idrid":
        shift = max((idrid_window - math.sqrt(2) * max(spatial_size)) // 2, 0)
        out: list[Transform] = [
            RandAffined(
                keys,
                spatial_size=spatial_size,
                prob=1.0,
                rotate_range=((0.0, math.pi),),
                translate_range=(shift, shift),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
            ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
            RandTorchVisiond("image", name="ColorJitter", brightness=0.1, contrast=0.05, saturation=0.1, hue=0.05),
        ]
    else:
        out = [
            RandRotated(keys, range_x=(0.0, math.pi), prob=1.0, keep_size=True, mode=("bilinear", "nearest")),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
        ]
    return out + _network_input(spec["channels"], keys)


def _network_input(channels: int, keys: Sequence[str]) -> list[Transform]:
    """Grey repeated to 3 channels, ImageNet mean/std (as the encoders were pretrained), float32."""
    out: list[Transform] = [RepeatChanneld("image", repeats=3)] if channels == 1 else []
    return [
        *out,
        NormalizeIntensityd("image", subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True),
        EnsureTyped(list(keys), dtype=torch.float32),
    ]


def expand(data: Sequence[dict], transforms: Sequence[Transform], num_workers: int = 0) -> list[dict]:
    """
    The training samples: the deterministic ``transforms`` applied once to every item of ``data`` (MONAI's
    ``CacheDataset``, in ``num_workers`` threads) and the lists they return — ACDC slices, IDRiD windows — flattened,
    so that a batch holds ``batch_size`` samples shuffled over the whole training set, as the thesis trains.

    .. code-block:: python

        slices = expand(acdc_datalist("/data/ACDC/database"), preprocessing("acdc", "train"))  # 1902 slices
    """
    cache = CacheDataset(list(data), Compose(transforms), cache_rate=1.0, num_workers=num_workers, copy_cache=False)
    items = [cache[i] for i in range(len(cache))]
    return [sample for item in items for sample in (item if isinstance(item, list) else [item])]


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


def eval_postprocessing(num_classes: int) -> list[Transform]:
    """
    Predictions and labels as one-hot maps of ``num_classes`` channels (background first) for the metrics; the
    logits and class labels are kept as ``"logits"`` and ``"target"`` for the validation loss. Two classes: a sigmoid
    over the one output channel thresholded at 0.5 (as the thesis); more: the arg-max class.
    """
    out: list[Transform] = [CopyItemsd(["pred", "label"], names=["logits", "target"])]
    if num_classes == 2:
        out += [Activationsd("pred", sigmoid=True), AsDiscreted("pred", threshold=0.5)]
    else:
        out.append(AsDiscreted("pred", argmax=True))
    return [*out, AsDiscreted(["pred", "label"], to_onehot=num_classes)]


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


def inference_datalist(dataset_name: str, folder: str | Path) -> list[dict]:
    """
    ``[{"image"}]`` to segment: the test images of ``folder`` when it holds ``dataset_name``'s layout, else the
    image files directly in ``folder`` (ACDC: ``.nii.gz`` / ``.nii`` frames, not ``_gt`` nor ``_4d``; COVID-QU-Ex and
    IDRiD: ``.png`` / ``.jpg``).

    Raises:
        DatasetLayoutError: ``folder`` does not exist or holds nothing to segment.
    """
    _spec(dataset_name)
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


class PooledDiceMetric(ConfusionMatrixMetric):
    """
    Dice as the thesis reports it: true/false positives and false negatives summed over every pixel of every image
    of the split, ``2 TP / (2 TP + FP + FN)`` per class, then averaged over the classes (the background excluded
    unless ``include_background``; a class absent from both prediction and ground truth is skipped, 1.0 if all
    are). Inputs are one-hot ``(B, C, ...)`` maps (:func:`eval_postprocessing`). MONAI's ``DiceMetric`` averages
    per-image Dice instead, which weights a small structure in one image like a large one in another.

    .. code-block:: python

        import torch
        from monai_skinattr.apps.transfer import PooledDiceMetric

        metric = PooledDiceMetric()
        pred = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).reshape(2, 1, 2, 1)
        truth = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 1, 2, 1)
        metric(torch.cat([1 - pred, pred], 1), torch.cat([1 - truth, truth], 1))
        print(metric.aggregate())  # tensor(0.5000): 2·1 / (2·1 + 1 + 1); per image: (2/3 + 0) / 2
    """

    def __init__(self, include_background: bool = False) -> None:
        super().__init__(
            include_background=include_background, metric_name="f1 score", compute_sample=False, reduction="sum_batch"
        )

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        per_class = super().aggregate()[0]
        present = per_class[~torch.isnan(per_class)]
        return present.mean() if present.numel() else torch.ones((), device=per_class.device)


class ClassChannel:
    """
    ``output_transform`` of an ``IgniteMetricHandler`` that scores one class: channel ``index`` of the one-hot
    ``pred`` and ``label`` of every item (for per-class ACDC metrics).

    .. code-block:: python

        IgniteMetricHandler(PooledDiceMetric(include_background=True), output_transform=ClassChannel(1))  # RV
    """

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, output: Sequence[Mapping]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        preds, labels = from_engine(["pred", "label"])(output)
        i = self.index
        return [p[i : i + 1] for p in preds], [y[i : i + 1] for y in labels]


class HD95Metric(HausdorffDistanceMetric):
    """
    MONAI's ``HausdorffDistanceMetric`` at the 95th percentile, averaged over the (image, class) pairs where both
    masks are non-empty — and NaN, not MONAI's 0 (a perfect score), when there is no such pair.
    """

    def __init__(self, include_background: bool = False) -> None:
        super().__init__(include_background=include_background, percentile=95, get_not_nans=True)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        value, not_nans = super().aggregate()
        return torch.where(not_nans > 0, value, torch.full_like(value, float("nan")))


def _metric(name: str, include_background: bool) -> object:
    if name == "dice":
        return PooledDiceMetric(include_background)
    if name == "jaccard":
        return MeanIoU(include_background=include_background, ignore_empty=False)
    if name == "hd95":
        return HD95Metric(include_background=include_background)
    raise ValueError(f"metric must be 'dice', 'jaccard' or 'hd95', got '{name}'.")


def metric_handlers(
    prefix: str,
    class_names: Sequence[str],
    names: Sequence[str] = ("dice",),
    per_class: bool = True,
    exclude: Sequence[str] = (),
) -> dict[str, IgniteMetricHandler]:
    """
    ``{"<prefix>_<name>": handler}`` averaged over the foreground classes, and with ``per_class`` and several
    foreground classes (ACDC) ``"<prefix>_<name>_<class>"`` for each. ``names``: ``"dice"`` (:class:`PooledDiceMetric`,
    the thesis' Dice), ``"jaccard"`` (MONAI's ``MeanIoU`` per image, every image counted: an empty ground truth
    predicted empty scores 1), ``"hd95"`` (:class:`HD95Metric`, in pixels, over the images where both masks are
    non-empty). Handlers named in ``exclude`` are left out (the evaluator's key metric, listed on its own).

    .. code-block:: python

        handlers = metric_handlers("test", ("background", "RV", "MYO", "LV"), ["dice", "hd95"])
        print(list(handlers))  # ['test_dice', 'test_dice_RV', ..., 'test_hd95', 'test_hd95_RV', ...]
    """
    out: dict[str, IgniteMetricHandler] = {}
    for name in names:
        out[f"{prefix}_{name}"] = IgniteMetricHandler(
            _metric(name, False), output_transform=from_engine(["pred", "label"]), save_details=False
        )
        if per_class and len(class_names) > 2:
            for i, cls in enumerate(class_names[1:], start=1):
                out[f"{prefix}_{name}_{cls}"] = IgniteMetricHandler(
                    _metric(name, True), output_transform=ClassChannel(i), save_details=False
                )
    return {k: v for k, v in out.items() if k not in exclude}


class ValidationLog:
    """
    After every validation, rewrite ``<output_dir>/validation.csv``: one row per epoch (the trainer's) with the
    validator's scalar metrics (e.g. ``epoch,val_dice,val_loss``). Rows of earlier epochs already in the file are
    kept, so a resumed run continues its log. Attach it to the validator.

    .. code-block:: python

        evaluator = SupervisedEvaluator(..., val_handlers=[ValidationLog("eval")])
    """

    def __init__(self, output_dir: str | Path, filename: str = "validation.csv") -> None:
        self.path = Path(output_dir) / filename

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        values = {k: float(v) for k, v in engine.state.metrics.items() if torch.as_tensor(v).numel() == 1}
        header = ["epoch", *values]
        rows = []
        if self.path.is_file():
            with open(self.path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < epoch]
        rows.append({"epoch": epoch, **{k: f"{v:.6f}" for k, v in values.items()}})
        lines = [",".join(header)] + [",".join(str(r.get(k, "")) for k in header) for r in rows]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic("\n".join(lines) + "\n", self.path)


def prepare_network(network: nn.Module, init_checkpoint: str | Path = "", mode: str = "full") -> nn.Module:
    """
    ``network`` (a :func:`~monai_skinattr.networks.thesis_network`) ready for downstream training: its encoder loaded
    from ``init_checkpoint`` — a state dict of the encoder, as the pretraining bundle saves it
    (``encoder_epoch<NNN>.pt``; strict: it must be this architecture's encoder) — or left at its random
    initialisation (``""``); in ``"decoder"`` mode the encoder frozen (no gradients, BatchNorm statistics fixed).

    .. code-block:: python

        net = prepare_network(thesis_network("unet", out_channels=4), "models/pretrain/encoder_epoch020.pt", "decoder")
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got '{mode}'.")
    if init_checkpoint:
        load_stage_weights(network.encoder, init_checkpoint, strict=True)
    return freeze_encoder(network, mode == "decoder")
