"""The paper's Table 1: per-image Dice, FPR and FNR (mean ± standard error) of each way of feeding the segmenter."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.metrics import SSIMMetric, compute_confusion_matrix_metric, get_confusion_matrix
from monai.networks.utils import one_hot
from scipy.stats import gaussian_kde
from torch import nn
from tqdm import tqdm

from ...utils.io import markdown_table, write_table
from ...visualize import line_plot
from .perturbation import gradient_perturbation

__all__ = ["segmentation_rates", "mean_and_standard_error", "table1", "ORIG", "ORACLE"]

logger = logging.getLogger(__name__)

ORIG = "ORIG"
ORACLE = "Oracle (GP with the test ground truth)"
_METRICS = ("dice", "fpr", "fnr")


def segmentation_rates(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """
    Per image, for the foreground (class 1 of a two-class softmax segmenter): Dice, false positive rate
    ``FP / (FP + TN)`` and false negative rate ``FN / (FN + TP)``, from MONAI's confusion matrix. Dice is 1 where
    both masks are empty; a rate whose denominator is 0 (FNR of an image without foreground) is NaN.

    .. code-block:: python

        rates = segmentation_rates(net(images), labels)  # {"dice": (B,), "fpr": (B,), "fnr": (B,)}
    """
    classes = logits.shape[1]
    pred = one_hot(logits.argmax(dim=1, keepdim=True), classes)
    truth = one_hot(labels.long(), classes)
    cm = get_confusion_matrix(pred, truth, include_background=False)[:, 0]  # (B, 4): tp, fp, tn, fn
    tp, fp, fn = cm[:, 0], cm[:, 1], cm[:, 3]
    denominator = 2 * tp + fp + fn
    dice = torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), torch.ones_like(tp))
    return {
        "dice": dice,
        "fpr": compute_confusion_matrix_metric("fpr", cm),
        "fnr": compute_confusion_matrix_metric("fnr", cm),
    }


def mean_and_standard_error(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, standard error, n)`` over the finite values (standard error 0 for a single value).

    .. code-block:: python

        mean_and_standard_error([0.5, 0.7, float("nan")])  # (0.6, 0.1, 2)
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), se, int(v.size)


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Kernel density of ``values`` on ``grid``; a normalised histogram where a KDE is undefined (one value)."""
    if values.size > 1 and np.ptp(values) > 1e-6:
        return gaussian_kde(values)(grid)
    counts, edges = np.histogram(values, bins=len(grid), range=(grid[0], grid[-1]), density=True)
    return counts


def table1(
    segmenter: nn.Module,
    translators: Mapping[str, nn.Module],
    datalist: Sequence[dict],
    transform: Callable,
    output_dir: str | Path,
    title: str,
    gamma: float = 1.0,
    iterations: int = 100,
    tolerance: float = 0.0,
    ssim_reference: str = "GP_Ts",
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> str:
    """
    The paper's Table 1 on ``datalist`` (the scored split; entries with ``"image"``, ``"label"``): per-image Dice,
    FPR and FNR, mean ± standard error, for ``ORIG`` (the segmenter on the image), the oracle (the test image
    perturbed with its own ground truth, ``gamma`` / ``iterations`` / ``tolerance`` as in training; the paper
    reports Dice ≈ 1) and each translator (``segmenter(Φ(I))``), plus the SSIM between the oracle's perturbed
    images and ``ssim_reference``'s translations (the paper: 0.32 ± 0.009). Writes ``table1.md/.csv/.json`` and
    ``table1_dice_density.png`` (density of per-image Dice per variant, the paper's figure) to ``output_dir``.

    .. code-block:: python

        print(table1(unet, {"GP_T": phi_t, "GP_Ts": phi_ts}, splits["test"], Compose(pre), "eval", "synthetic"))

    Returns:
        the Markdown table.
    """
    segmenter = segmenter.to(device).eval()
    translators = {name: net.to(device).eval() for name, net in translators.items()}
    variants = [ORIG, ORACLE, *translators]
    scores: dict[str, dict[str, list[float]]] = {v: {m: [] for m in _METRICS} for v in variants}
    ssim: list[float] = []
    loader = DataLoader(Dataset(list(datalist), transform), batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in tqdm(loader, desc="Table 1", unit="batch"):
        images, labels = batch["image"].to(device), batch["label"].to(device)
        oracle = gradient_perturbation(segmenter, images, labels, gamma, iterations, tolerance).images
        with torch.no_grad():
            inputs = {ORIG: images, ORACLE: oracle, **{name: phi(images) for name, phi in translators.items()}}
            for variant, x in inputs.items():
                for metric, value in segmentation_rates(segmenter(x), labels).items():
                    scores[variant][metric] += value.cpu().tolist()
            if ssim_reference in inputs:
                for gp, translated in zip(oracle, inputs[ssim_reference], strict=True):
                    data_range = float(gp.max() - gp.min()) or 1.0
                    value = SSIMMetric(spatial_dims=2, data_range=data_range)(translated[None], gp[None])
                    ssim.append(float(value.mean()))
    header = ["variant", "Dice", "FPR", "FNR", "images"]
    rows, data = [], {"title": title, "variants": {}}
    for variant in variants:
        stats = {m: mean_and_standard_error(scores[variant][m]) for m in _METRICS}
        rows.append([variant, *(f"{stats[m][0]:.4f} ± {stats[m][1]:.4f}" for m in _METRICS), stats["dice"][2]])
        data["variants"][variant] = {m: {"mean": s[0], "se": s[1], "n": s[2]} for m, s in stats.items()}
        data["variants"][variant]["per_image_dice"] = scores[variant]["dice"]
    markdown = markdown_table(header, rows, title=title)
    if ssim:
        mean, se, n = mean_and_standard_error(ssim)
        data["ssim_oracle_vs_" + ssim_reference] = {"mean": mean, "se": se, "n": n}
        markdown += f"\nSSIM(GP, {ssim_reference}) over {n} images: {mean:.4f} ± {se:.4f}\n"
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, "table1", markdown, header, rows, data)
    grid = np.linspace(0.0, 1.0, 101)
    densities = {v: _density(np.asarray(scores[v]["dice"]), grid) for v in variants}
    line_plot(grid, densities, out / "table1_dice_density.png", title=title, xlabel="Dice per image", ylabel="density")
    return markdown
