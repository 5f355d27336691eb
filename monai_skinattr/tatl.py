"""TATL pipeline pieces the bundles call: dataset preparation, stage datalists, the full cascade, the score table.

The training stages themselves are declared in the bundles' JSON (``bundles/tatl_*``); this module holds what a
config cannot say compactly: making sure a dataset is there, joining stage-1 predictions to the datalist, running
the three-stage cascade on an image, and scoring written masks the ISIC way.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from torch import nn
from tqdm import tqdm

from .data import synthetic
from .data.checks import DatasetLayoutError, read_2d
from .data.folds import fold_split, kfold
from .data.io import save_image_atomic, write_text_atomic
from .data.isic import ATTRIBUTES, detect_year, isic_datalist
from .metrics import isic_task2_score
from .networks import EffLinkNet, EffUNet, ProbabilityEnsemble, load_stage_weights
from .transforms import LesionBBoxCrop
from .visualize import overlay

__all__ = [
    "TATL_ARCHS",
    "build_network",
    "load_probability_net",
    "ensure_isic",
    "stage_datalists",
    "with_predicted_lesions",
    "TATLCascade",
    "attribute_table",
    "cross_validation_table",
]

logger = logging.getLogger(__name__)


#: TATL's two segmenter shapes: U (concatenating skips) and Link (adding skips), EfficientNet-b0 encoders.
TATL_ARCHS = {"unet": EffUNet, "linknet": EffLinkNet}


def build_network(arch: str = "unet", **kwargs) -> nn.Module:
    """A TATL segmenter by name: ``"unet"`` (:class:`EffUNet`) or ``"linknet"`` (:class:`EffLinkNet`)."""
    if arch not in TATL_ARCHS:
        raise ValueError(f"arch must be one of {sorted(TATL_ARCHS)}, got '{arch}'.")
    return TATL_ARCHS[arch](**kwargs)


def load_probability_net(
    archs: str | Sequence[str], checkpoints: str | Path | Sequence[str | Path], device: str | torch.device = "cpu"
) -> ProbabilityEnsemble:
    """
    Trained TATL segmenters as one probability network: each ``archs[i]`` loaded (strictly) from ``checkpoints[i]``
    (a MONAI ``CheckpointSaver`` file), their sigmoid outputs averaged — one network gives its own probabilities,
    U + Link gives TATL's ensemble.
    """
    archs = [archs] if isinstance(archs, str) else list(archs)
    checkpoints = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    if len(archs) != len(checkpoints):
        raise ValueError(f"{len(archs)} architectures but {len(checkpoints)} checkpoints.")
    nets = []
    for arch, ckpt in zip(archs, checkpoints, strict=True):
        net = build_network(arch)
        load_stage_weights(net, ckpt, strict=True)
        nets.append(net)
    return ProbabilityEnsemble(nets).to(device).eval()


def ensure_isic(
    root: str | Path, n_train: int = 40, n_val: int = 10, size: Sequence[int] = (128, 160), seed: int = 0
) -> str:
    """
    The ISIC 2018 dataset folder to use: ``root`` itself when it holds a real ISIC layout, otherwise the embedded
    synthetic ISIC 2018 data (training + validation splits), generated there on first use.
    """
    root = Path(root)
    synthetic_done = all(synthetic.is_complete(root, "isic", s) for s in ("training", "validation"))
    if root.is_dir() and not synthetic_done:
        try:
            detect_year(root)
            return str(root)
        except FileNotFoundError:
            if any(root.iterdir()):
                raise FileNotFoundError(
                    f"'{root}' is neither an ISIC challenge folder nor empty; point dataset_dir at the folder holding "
                    "ISIC2018_Task1-2_Training_Input (or at an empty/new folder for the synthetic data)."
                ) from None
    if not synthetic_done:
        logger.info("generating the synthetic ISIC 2018 dataset in %s", root)
        synthetic.make_isic(root, n=n_train, size=tuple(size), seed=seed, split="training")
        synthetic.make_isic(root, n=n_val, size=tuple(size), seed=seed, split="validation")
    return str(root)


def stage_datalists(
    root: str | Path, task: int = 2, fold: int = 0, num_folds: int = 5, seed: int = 0, split: str = "training"
) -> tuple[list[dict], list[dict]]:
    """``(train, validation)`` of cross-validation round ``fold`` on an ISIC split (Task 2 folds are stratified
    by attribute presence; Task 1 folds are plain)."""
    data = isic_datalist(root, task=task, split=split)
    folds = kfold(data, k=num_folds, seed=seed, stratify_by=ATTRIBUTES if task == 2 else ())
    return fold_split(folds, fold)


def with_predicted_lesions(datalist: Sequence[dict], lesion_dir: str | Path, key: str = "lesion") -> list[dict]:
    """
    Copy of ``datalist`` whose ``key`` points at the stage-1 predicted lesion ``<id>_segmentation.png`` in
    ``lesion_dir`` (written by the lesion bundle's inference) instead of the ground truth.
    """
    lesion_dir = Path(lesion_dir)
    out, missing = [], []
    for entry in datalist:
        path = lesion_dir / f"{entry['id']}_segmentation.png"
        if not path.is_file():
            missing.append(str(path))
        out.append({**entry, key: str(path)})
    if missing:
        raise DatasetLayoutError(
            lesion_dir,
            [f"{m}: no predicted lesion (run the lesion bundle's inference.json first)" for m in missing],
        )
    return out


def _resize(x: torch.Tensor, size: Sequence[int], mode: str = "bilinear") -> torch.Tensor:
    """Resize a (C, H, W) tensor."""
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x[None].float(), size=tuple(size), mode=mode, **kwargs)[0]


class TATLCascade:
    """
    TATL's full inference: the stage-1 network finds the lesion at ``lesion_size``, the image is cropped to the
    lesion box grown by ``offset`` (counted on the lesion grid, scaled to the image), the stage-2 network predicts
    the attribute-agnostic union map and the stage-3 networks one map per attribute on the crop resized to
    ``input_size``; every map is put back at its place in the original image (the crop is inverted).

    Networks return **probabilities** (wrap a logit network in ``ProbabilityEnsemble([net])``; TATL's U + Link
    average is ``ProbabilityEnsemble([unet, linknet])``). They may be eager or TorchScript modules.

    .. code-block:: python

        cascade = TATLCascade(lesion_net, union_net, {"streaks": streaks_net, ...})
        masks = cascade(image)  # image: (3, H, W) float in [0, 1]; masks: name -> (H, W) bool

    Args:
        lesion_net: stage 1, image -> lesion probability; ``None`` uses the whole image (ablation without stage 1).
        union_net: stage 2, crop -> union probability (``None`` skips the union map).
        attribute_nets: stage 3, attribute name -> network.
        lesion_size: stage-1 input size (TATL: 384 x 512).
        input_size: stage-2/3 input size (TATL: 384 x 512).
        offset: lesion box margin on the lesion grid (TATL: 40).
        threshold: probability threshold of every mask.
        device: where the networks run.
    """

    def __init__(
        self,
        lesion_net: nn.Module | None,
        union_net: nn.Module | None,
        attribute_nets: Mapping[str, nn.Module],
        lesion_size: Sequence[int] = (384, 512),
        input_size: Sequence[int] = (384, 512),
        offset: int = 40,
        threshold: float = 0.5,
        device: str | torch.device = "cpu",
    ) -> None:
        self.lesion_net = lesion_net
        self.union_net = union_net
        self.attribute_nets = dict(attribute_nets)
        self.lesion_size = tuple(lesion_size)
        self.input_size = tuple(input_size)
        self.cropper = LesionBBoxCrop(offset=offset)
        self.threshold = threshold
        self.device = torch.device(device)
        for net in [lesion_net, union_net, *self.attribute_nets.values()]:
            if net is not None:
                net.eval()

    def _predict(self, net: nn.Module, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Probability map (1, *size) of ``net`` on ``x`` resized to the network input and back to ``size``."""
        with torch.no_grad():
            prob = net(_resize(x, self.input_size)[None].to(self.device))[0].float().cpu()
        return _resize(prob, size)

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if image.ndim != 3:
            raise ValueError(f"expected one (C, H, W) image, got shape {tuple(image.shape)}.")
        image = image.float()
        h, w = image.shape[-2:]
        maps: dict[str, torch.Tensor] = {}
        if self.lesion_net is None:
            lesion_small = torch.ones(1, *self.lesion_size)
        else:
            with torch.no_grad():
                lesion_in = _resize(image, self.lesion_size)[None].to(self.device)
                lesion_small = (self.lesion_net(lesion_in)[0].float().cpu() >= self.threshold).float()
            maps["lesion"] = _resize(lesion_small, (h, w), mode="nearest")[0] > 0.5
        crop = self.cropper(MetaTensor(image), lesion_small)
        nets = dict(self.attribute_nets)
        if self.union_net is not None:
            nets = {"union": self.union_net, **nets}
        for name, net in nets.items():
            prob = self._predict(net, crop.as_tensor(), crop.shape[-2:])
            pred = MetaTensor((prob >= self.threshold).float(), applied_operations=list(crop.applied_operations))
            maps[name] = self.cropper.inverse(pred)[0].as_tensor() > 0.5
        return maps

    def predict_datalist(self, datalist: Sequence[dict], out_dir: str | Path, progress: bool = True) -> Path:
        """
        Run the cascade on every entry's ``image`` and write, at the original size and as 0/255 PNGs:
        ``attributes/<id>_attribute_<name>.png`` (accepted by the official ISIC scorer),
        ``lesion/<id>_segmentation.png``, ``union/<id>_union.png`` and an ``overlays/<id>_overlay.png``.
        """
        out = Path(out_dir)
        folders = {k: out / k for k in ("attributes", "lesion", "union", "overlays")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for entry in tqdm(datalist, desc="TATL cascade", unit="image", disable=not progress):
            rgb = read_2d(entry["image"])
            image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
            maps = {k: v.numpy() for k, v in self(image).items()}
            image_id = entry["id"]
            if "lesion" in maps:
                save_image_atomic(
                    maps["lesion"].astype(np.uint8) * 255, folders["lesion"] / f"{image_id}_segmentation.png"
                )
            if "union" in maps:
                save_image_atomic(maps["union"].astype(np.uint8) * 255, folders["union"] / f"{image_id}_union.png")
            for name in self.attribute_nets:
                mask = maps[name].astype(np.uint8) * 255
                save_image_atomic(mask, folders["attributes"] / f"{image_id}_attribute_{name}.png")
            shown = {k: maps[k] for k in ("lesion", *self.attribute_nets) if k in maps}
            save_image_atomic(overlay(rgb, shown, alpha=0.35), folders["overlays"] / f"{image_id}_overlay.png")
        return out


def attribute_table(
    datalist: Sequence[dict],
    prediction_dir: str | Path,
    out_dir: str | Path | None = None,
    attributes: Sequence[str] = ATTRIBUTES,
) -> dict:
    """
    ISIC Task 2 scores (``isic_task2_score``) of the predicted ``<id>_attribute_<name>.png`` in ``prediction_dir``
    against the ground truth of ``datalist``; prints the per-attribute Jaccard / Dice table with the macro and micro
    averages as Markdown and, with ``out_dir``, writes ``attribute_scores.csv``, ``.md`` and ``.json`` there.
    """
    pred_dir = Path(prediction_dir)
    truths: dict[str, list] = {a: [] for a in attributes}
    preds: dict[str, list] = {a: [] for a in attributes}
    missing = []
    for entry in datalist:
        for a in attributes:
            path = pred_dir / f"{entry['id']}_attribute_{a}.png"
            if not path.is_file():
                missing.append(str(path))
                continue
            truths[a].append(read_2d(entry[a]))
            preds[a].append(read_2d(path))
    if missing:
        raise DatasetLayoutError(pred_dir, [f"{m}: missing prediction" for m in missing])
    scores = isic_task2_score(truths, preds)
    rows = [(a, scores[a]["jaccard"], scores[a]["dice"]) for a in attributes]
    rows += [("macro average", scores["macro_average"]["jaccard"], scores["macro_average"]["dice"])]
    rows += [("micro average (ISIC overall)", scores["micro_average"]["jaccard"], scores["micro_average"]["dice"])]
    markdown = "| attribute | Jaccard | Dice |\n|---|---:|---:|\n" + "".join(
        f"| {a} | {j:.4f} | {d:.4f} |\n" for a, j, d in rows
    )
    print(f"\nISIC 2018 Task 2 scores on {len(datalist)} images\n\n{markdown}")
    if out_dir is not None:
        csv_rows = [(a, f"{j:.6f}", f"{d:.6f}") for a, j, d in rows]
        _write_table(out_dir, "attribute_scores", ["attribute", "jaccard", "dice"], csv_rows, markdown)
        write_text_atomic(json.dumps(scores, indent=2), Path(out_dir) / "attribute_scores.json")
    return scores


def _write_table(
    out_dir: str | Path, stem: str, header: Sequence[str], rows: Sequence[Sequence], markdown: str
) -> None:
    """``<stem>.csv`` and ``<stem>.md`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(buffer.getvalue(), out / f"{stem}.csv")
    write_text_atomic(markdown, out / f"{stem}.md")


def cross_validation_table(score_files: Sequence[str | Path], out_dir: str | Path | None = None) -> dict:
    """
    Mean ± standard deviation over folds of each attribute's Jaccard and Dice (TATL Tables A.10 / A.11), from the
    ``attribute_scores.json`` each fold's pipeline wrote. Prints Markdown; with ``out_dir`` writes
    ``cross_validation.csv`` and ``.md`` there.
    """
    folds = [json.loads(Path(f).read_text()) for f in score_files]
    if not folds:
        raise ValueError("no fold scores given.")
    names = [k for k in folds[0] if isinstance(folds[0][k], dict) and k not in ("macro_average", "micro_average")]
    names += ["macro_average", "micro_average"]
    summary = {}
    for name in names:
        summary[name] = {}
        for metric in ("jaccard", "dice"):
            values = np.array([f[name][metric] for f in folds])
            summary[name][metric] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    header = f"| attribute | Jaccard (mean ± std, {len(folds)} folds) | Dice (mean ± std) |\n|---|---:|---:|\n"
    markdown = header + "".join(
        f"| {n} | {summary[n]['jaccard'][0]:.4f} ± {summary[n]['jaccard'][1]:.4f} "
        f"| {summary[n]['dice'][0]:.4f} ± {summary[n]['dice'][1]:.4f} |\n"
        for n in names
    )
    print(f"\nCross-validation over {len(folds)} folds\n\n{markdown}")
    if out_dir is not None:
        header = ["attribute", "jaccard_mean", "jaccard_std", "dice_mean", "dice_std"]
        rows = [[n, *(f"{v:.6f}" for m in ("jaccard", "dice") for v in summary[n][m])] for n in names]
        _write_table(out_dir, "cross_validation", header, rows, markdown)
    return summary
