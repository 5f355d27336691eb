"""Robustness (Eq. 4.2) of pretrained encoders on a downstream dataset's training images, for the study and for
online selection during pretraining."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.transforms import Compose, RepeatChanneld, Resized, ScaleIntensityRanged
from torch import nn
from torchvision.transforms import Normalize

from ...metrics import default_views, robustness_score
from ...transforms.pipelines import IMAGENET_MEAN, IMAGENET_STD
from ...utils.io import write_text_atomic
from .datasets import DATASETS, downstream_splits, expand
from .transforms import preprocessing

__all__ = ["robustness_images", "encoder_score", "score_encoders", "target_score"]


def robustness_images(
    dataset_name: str, datalist: Sequence[dict], spatial_size: Sequence[int] = (224, 224), n: int = 256, seed: int = 0
) -> list[torch.Tensor]:
    """
    Up to ``n`` training samples of ``dataset_name`` (seeded choice; ACDC slices, COVID-QU-Ex X-rays, IDRiD
    training windows) as ``(3, H, W)`` images in [0, 1] at ``spatial_size``: the downstream preprocessing without
    the network's normalisation, so the colour-jitter views of :func:`encoder_score` act on real intensities.

    .. code-block:: python

        images = robustness_images("acdc", splits["training"], n=128)
    """
    samples = expand(datalist, preprocessing(dataset_name, "train", spatial_size, label=False))
    if len(samples) < 2:
        raise ValueError(f"robustness needs at least 2 {dataset_name} training samples, got {len(samples)}.")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(samples), size=min(n, len(samples)), replace=False).tolist())
    scale = 255.0 if dataset_name == "idrid" else 1.0  # IDRiD windows stay 8-bit until augmentation
    finish = Compose(
        [Resized("image", spatial_size=spatial_size, mode="bilinear")]
        + [ScaleIntensityRanged("image", a_min=0.0, a_max=scale, b_min=0.0, b_max=1.0, clip=True)]
        + ([RepeatChanneld("image", repeats=3)] if DATASETS[dataset_name]["channels"] == 1 else [])
    )
    return [torch.as_tensor(finish(dict(samples[i]))["image"], dtype=torch.float32) for i in chosen]


class _Normalised(nn.Module):
    """The encoder behind the ImageNet normalisation its downstream network gets."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(self.normalize(x))


def encoder_score(
    images: Sequence[torch.Tensor],
    pool: bool = True,
    level: int = -2,
    distance: str = "cosine",
    margin: float = 0.5,
    seed: int = 0,
    batch_size: int = 16,
) -> Callable[[nn.Module], float]:
    """
    ``score(encoder) -> robustness`` on ``images`` (from :func:`robustness_images`): the thesis' colour-jitter
    views in [0, 1], then ImageNet normalisation, the encoder's level ``level`` features (pooled for decoder-only
    transfer, unpooled for full), :func:`~monai_skinattr.metrics.robustness_score` with a fixed seed, so every
    checkpoint is scored on the same triplets.

    .. code-block:: python

        score = encoder_score(robustness_images("covidqu", splits["training"]), pool=True)
        print(score(net.encoder))
    """

    def score(encoder: nn.Module) -> float:
        return robustness_score(
            _Normalised(encoder),
            images,
            level,
            pool,
            distance,
            margin,
            default_views(),
            seed=seed,
            batch_size=batch_size,
        )

    return score


def score_encoders(
    network_def: nn.Module, checkpoints: Sequence[str | Path], score: Callable[[nn.Module], float], output: str | Path
) -> list[float]:
    """
    Load each encoder checkpoint (``EncoderCheckpoints`` files) into ``network_def.encoder`` (strict), score it,
    and write ``output`` (CSV ``checkpoint,robustness``, atomically). Returns the scores in checkpoint order.

    .. code-block:: python

        scores = score_encoders(thesis_network("unet"), paths, encoder_score(images), "robustness.csv")
    """
    scores = []
    for path in checkpoints:
        if not Path(path).is_file():
            raise FileNotFoundError(f"encoder checkpoint '{path}' does not exist; run the pretraining first.")
        network_def.encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        scores.append(float(score(network_def.encoder)))
    buffer = io.StringIO()
    buffer.write("checkpoint,robustness\n")
    buffer.writelines(f"{p},{s:.6f}\n" for p, s in zip(checkpoints, scores, strict=True))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(buffer.getvalue(), output)
    return scores


def target_score(
    dataset_name: str,
    dataset_dir: str | Path,
    synthetic_dir: str | Path,
    synthetic_params: Mapping | None = None,
    make_synthetic: object = False,
    pool: bool = True,
    n: int = 256,
    spatial_size: Sequence[int] = (224, 224),
    seed: int = 0,
) -> Callable[[nn.Module], float]:
    """:func:`encoder_score` on ``dataset_name``'s training split (as :func:`downstream_splits` carves it): the
    score function of ``pretrain.json``'s online mode.

    .. code-block:: python

        score = target_score("acdc", "/data/ACDC", "bundle/data/acdc_synthetic")
    """
    splits = downstream_splits(dataset_name, dataset_dir, synthetic_dir, synthetic_params, make_synthetic)
    return encoder_score(robustness_images(dataset_name, splits["training"], spatial_size, n, seed), pool, seed=seed)
