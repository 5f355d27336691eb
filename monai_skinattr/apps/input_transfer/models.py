"""The bundle's checkpoints: the segmenter and one translator per variant, and the assembled test-time network."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from ...networks import load_stage_weights
from ...utils.io import write_bytes_atomic

__all__ = ["VARIANTS", "load_network", "assemble_model", "translator_checkpoint"]

#: translator variants of the paper's Table 1: GP step size γ and the translator's loss ("e2e": no GP target,
#: the pre-processor trained through the frozen segmenter with the segmentation loss).
VARIANTS = {
    "gp_ts": {"label": "GP_Ts", "gamma": 1.0, "loss": "ssim_l1"},
    "gp_t": {"label": "GP_T", "gamma": 0.1, "loss": "l1"},
    "e2e": {"label": "Pre-processor without GP (end to end)", "gamma": None, "loss": "segmentation"},
}


def translator_checkpoint(models_dir: str | Path, variant: str) -> Path:
    """``<models_dir>/translator_<variant>.pt``, for a variant of :data:`VARIANTS`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got '{variant}'.")
    return Path(models_dir) / f"translator_{variant}.pt"


def load_network(net: nn.Module, checkpoint: str | Path) -> nn.Module:
    """``net`` with every weight loaded from ``checkpoint`` (strict), for configs: ``$load_network(@def, path)``.

    .. code-block:: python

        segmenter = load_network(UNet(3, 2), "models/segmenter.pt")
    """
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint '{checkpoint}' does not exist; train that stage first.")
    load_stage_weights(net, checkpoint, strict=True)
    return net


def assemble_model(models_dir: str | Path, variant: str = "gp_ts") -> Path:
    """
    Write ``<models_dir>/model.pt``: the state dict of ``TranslateThenSegment`` (``translator.*`` from
    ``translator_<variant>.pt``, ``segmenter.*`` from ``segmenter.pt``), the one checkpoint ``inference.json``
    (and MONAI Label, ``ckpt_export``) loads. Written atomically.

    .. code-block:: python

        assemble_model("bundles/input_transfer/models", "gp_ts")
    """
    models = Path(models_dir)
    parts = {"translator": translator_checkpoint(models, variant), "segmenter": models / "segmenter.pt"}
    state = {}
    for prefix, path in parts.items():
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint '{path}' does not exist; train that stage first.")
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state.update({f"{prefix}.{k.removeprefix('module.')}": v for k, v in loaded.items()})
    buffer = io.BytesIO()
    torch.save(state, buffer)
    out = models / "model.pt"
    write_bytes_atomic(buffer.getvalue(), out)
    return out
