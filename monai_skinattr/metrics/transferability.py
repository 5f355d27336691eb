"""Encoder robustness as a transferability signal (thesis, method 2), and checkpoint selection by it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import ColorJitter

__all__ = ["robustness_score", "select_offline", "select_online", "default_views"]


def default_views(channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Colour-jitter view of a (C, H, W) image in [0, 1]: brightness/contrast, plus saturation/hue for RGB."""
    if channels == 3:
        return ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    return ColorJitter(brightness=0.4, contrast=0.4)


def _embed(features: torch.Tensor, pool: bool) -> torch.Tensor:
    return features.mean(dim=(-2, -1)) if pool else features.flatten(1)


def _distance(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(a, b, dim=1)
    return torch.linalg.vector_norm(a - b, dim=1)


def robustness_score(
    encoder: nn.Module | Callable[[torch.Tensor], Sequence[torch.Tensor]],
    loader: Iterable,
    level: int = -2,
    pool: bool = True,
    distance: str = "cosine",
    margin: float = 0.5,
    views: Callable[[torch.Tensor], torch.Tensor] | None = None,
    image_key: str = "image",
    seed: int = 0,
    device: str | torch.device | None = None,
) -> float:
    """
    Robustness of an encoder's representation: ``1 - mean triplet hinge`` over the images of ``loader``. For each
    image the anchor and the positive are two random views of it (colour jitter by default) and the negative is a
    view of another image of the batch (the batch rolled by one, so never the image itself; a batch of one takes
    the previous batch's first image). ``hinge = max(0, d(anchor, positive) - d(anchor, negative) + margin)``
    on the encoder's features at ``level`` (second-to-last by default), globally average-pooled or flattened.

    .. code-block:: python

        from monai_skinattr.metrics import robustness_score

        score = robustness_score(net.encoder, loader)  # loader yields (B, C, H, W) images in [0, 1] or dicts

    Args:
        encoder: returns the list of per-level feature maps (``net.encoder`` of this package's networks).
        loader: batches of images, as tensors or dicts holding them under ``image_key``.
        level: index of the feature level used.
        pool: average-pool the feature map to a vector (else flatten it).
        distance: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        margin: triplet margin.
        views: random view of one (C, H, W) image; default :func:`default_views`.
        image_key: key of the images in dict batches.
        seed: seed of the random views, so a score is reproducible.
        device: where to run (default: the encoder's device).
    """
    if distance not in ("cosine", "euclidean"):
        raise ValueError(f"distance must be 'cosine' or 'euclidean', got '{distance}'.")
    if device is None:
        params = list(encoder.parameters()) if isinstance(encoder, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    was_training = isinstance(encoder, nn.Module) and encoder.training
    if isinstance(encoder, nn.Module):
        encoder.eval()
    hinges, previous = [], None
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for batch in loader:
                images = batch[image_key] if isinstance(batch, dict) else batch
                images = torch.as_tensor(images).float()
                view = views or default_views(images.shape[1])
                v1 = torch.stack([view(img) for img in images]).to(device)
                v2 = torch.stack([view(img) for img in images]).to(device)
                anchor = _embed(encoder(v1)[level], pool)
                positive = _embed(encoder(v2)[level], pool)
                if len(images) > 1:
                    negative = positive.roll(1, dims=0)
                elif previous is not None:
                    negative = previous
                else:
                    continue
                previous = positive[:1]
                hinge = F.relu(_distance(anchor, positive, distance) - _distance(anchor, negative, distance) + margin)
                hinges.append(hinge.cpu())
    finally:
        if was_training:
            encoder.train()
    if not hinges:
        raise ValueError("robustness_score needs at least two images to form triplets.")
    return float(1.0 - torch.cat(hinges).mean())


def select_offline(scores: Sequence[float]) -> int:
    """Index of the best checkpoint when all scores are known ("offline" selection)."""
    if not scores:
        raise ValueError("no scores to select from.")
    return int(max(range(len(scores)), key=lambda i: (scores[i], -i)))


def select_online(scores: Sequence[float]) -> int:
    """
    "Online" selection while pretraining runs: the first local maximum of ``scores``, where ``scores[0]`` is the
    random initialisation and is never selected; the last checkpoint if the scores never fall.
    """
    if len(scores) < 2:
        raise ValueError("online selection needs the random-init score and at least one checkpoint.")
    for i in range(1, len(scores) - 1):
        if scores[i] > scores[i + 1] and (i == 1 or scores[i] >= scores[i - 1]):
            return i
    return len(scores) - 1
