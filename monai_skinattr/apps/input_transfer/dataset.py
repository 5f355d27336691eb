"""Stage (b) of deep input transfer: every training image perturbed once, written as a float file, resumable."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import EnsureChannelFirstd, EnsureTyped, LoadImaged, Transform
from torch import nn
from tqdm import tqdm

from ...config import as_bool
from ...utils.io import write_bytes_atomic, write_text_atomic
from .perturbation import gradient_perturbation, label_mismatch

__all__ = ["perturb_dataset", "perturbed_datalist", "target_loading", "SUMMARY"]

logger = logging.getLogger(__name__)

SUMMARY = "perturbation.csv"
_PARAMS = "perturbation.json"
_COLUMNS = ["id", "iterations", "wrong_before", "wrong_after", "min", "max"]


def _read_rows(folder: Path) -> dict[str, dict]:
    path = folder / SUMMARY
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f) if (folder / f"{row['id']}.npy").is_file()}


def _write_rows(folder: Path, rows: dict[str, dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS)
    writer.writeheader()
    writer.writerows(rows[k] for k in sorted(rows))
    write_text_atomic(out.getvalue(), folder / SUMMARY)


def _discard(folder: Path) -> None:
    """Remove the images a previous run perturbed into ``folder``, its summary and its settings."""
    for image_id in _read_rows(folder):
        (folder / f"{image_id}.npy").unlink()
    for name in (SUMMARY, _PARAMS):
        (folder / name).unlink(missing_ok=True)


def _check_params(folder: Path, params: dict) -> None:
    path = folder / _PARAMS
    if path.is_file():
        old = json.loads(path.read_text())
        if old != params:
            raise ValueError(
                f"'{folder}' holds images perturbed with {old}, not {params}: use another output folder or delete it."
            )
    else:
        write_text_atomic(json.dumps(params, indent=2), path)


def perturb_dataset(
    network: nn.Module,
    datalist: Sequence[dict],
    transform: Callable,
    output_dir: str | Path,
    gamma: float = 1.0,
    iterations: int = 100,
    tolerance: float = 0.0,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    resume: object = True,
) -> list[dict]:
    """
    Perturb every image of ``datalist`` (entries with ``"image"``, ``"label"`` and ``"id"``) with
    :func:`gradient_perturbation` after ``transform`` (the segmenter's own preprocessing), and write ``I + Δ`` as
    ``<output_dir>/<id>.npy`` (float32, channel first, at the network's input size) plus ``perturbation.csv``
    (steps taken, fraction of wrong pixels before and after, value range per image). Every file is written
    atomically and the summary is rewritten after each batch, so an interrupted run continues where it stopped
    (``resume``; ``False`` discards what the folder holds, e.g. images perturbed by an earlier segmenter, and
    starts again); a folder perturbed with other settings is refused rather than mixed.

    .. code-block:: python

        train = perturb_dataset(segmenter, splits["training"], Compose(preprocessing), "models/perturbed_gamma1.0")
        print(train[0]["target"])  # models/perturbed_gamma1.0/ISIC_0000000.npy

    Returns:
        :func:`perturbed_datalist` of the folder: the entries with ``"target"`` added.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not as_bool(resume, "resume"):
        _discard(folder)
    _check_params(folder, {"gamma": gamma, "iterations": iterations, "tolerance": tolerance})
    ids = [str(e["id"]) for e in datalist]
    if len(set(ids)) != len(ids):
        raise ValueError("datalist ids must be unique: they name the perturbed files.")
    rows = _read_rows(folder)
    todo = [e for e in datalist if str(e["id"]) not in rows]
    if len(todo) < len(datalist):
        logger.info("perturbation: %d of %d images already in %s", len(datalist) - len(todo), len(datalist), folder)
    network = network.to(device).eval()
    loader = DataLoader(Dataset(todo, transform), batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in tqdm(loader, desc=f"perturbing (gamma={gamma})", unit="batch", disable=not todo):
        images, labels = batch["image"].to(device), batch["label"].to(device)
        with torch.no_grad():
            before = label_mismatch(network(images), labels)
        out = gradient_perturbation(network, images, labels, gamma=gamma, iterations=iterations, tolerance=tolerance)
        with torch.no_grad():
            after = label_mismatch(network(out.images), labels)
        for i, image_id in enumerate(batch["id"]):
            array = out.images[i].detach().cpu().numpy().astype(np.float32)
            buffer = io.BytesIO()
            np.save(buffer, array)
            write_bytes_atomic(buffer.getvalue(), folder / f"{image_id}.npy")
            rows[str(image_id)] = {
                "id": image_id,
                "iterations": int(out.iterations[i]),
                "wrong_before": f"{float(before[i]):.6f}",
                "wrong_after": f"{float(after[i]):.6f}",
                "min": f"{array.min():.6f}",
                "max": f"{array.max():.6f}",
            }
        _write_rows(folder, rows)
    return perturbed_datalist(folder, datalist)


def perturbed_datalist(output_dir: str | Path, datalist: Sequence[dict], key: str = "target") -> list[dict]:
    """
    ``datalist`` with each entry's perturbed image under ``key`` (``"label"`` makes it the regression target of a
    ``SupervisedTrainer``, replacing the mask), for training the translator; an error names the images
    :func:`perturb_dataset` has not written (yet) to ``output_dir``.

    .. code-block:: python

        pairs = perturbed_datalist("models/perturbed_gamma1.0", splits["training"])
    """
    folder = Path(output_dir)
    rows = _read_rows(folder)
    missing = [str(e["id"]) for e in datalist if str(e["id"]) not in rows]
    if missing:
        raise FileNotFoundError(
            f"'{folder}' lacks the perturbed images of {len(missing)} of {len(datalist)} entries "
            f"(first: {missing[:3]}); run the perturbation stage (configs/perturb.json) first."
        )
    return [{**e, key: str(folder / f"{e['id']}.npy")} for e in datalist]


def target_loading(key: str = "target") -> list[Transform]:
    """Transforms that read the ``.npy`` under ``key`` written by :func:`perturb_dataset` as a channel-first
    float tensor; append them to the image preprocessing of the translator's training data.

    .. code-block:: python

        load = Compose(lesion_preprocessing([192, 256], label=False, normalization="none") + target_loading())
    """
    return [
        LoadImaged(key, reader="NumpyReader", image_only=True),
        EnsureChannelFirstd(key, channel_dim=0),
        EnsureTyped(key, dtype=torch.float32),
    ]
