"""
Encoder robustness as a transferability indicator, checkpoint selection by it, and the transferability indicator
score (the pretraining-length thesis, method 2: Eq. 3.1, Eq. 4.2 and its chapter 4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import Randomizable
from monai.utils import convert_to_tensor
from torch import nn
from torchvision.transforms import ColorJitter

__all__ = [
    "default_views",
    "robustness_score",
    "select_offline",
    "select_online",
    "transferability_indicator_score",
]

_ANCHOR, _POSITIVE, _NEGATIVE, _NEGATIVE_INDEX = range(4)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(a, b, dim=1)


def _l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().mean(dim=1)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _cosine(a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True))


_DISTANCES = {"cosine": _cosine, "l2": _l2, "pearson": _pearson}  # row-wise, between (N, D) feature matrices


def default_views() -> ColorJitter:
    """
    The thesis' colour jitter (its Algorithm 2.3, used for the robustness views in section 4.2): brightness 0.1,
    contrast 0.05, saturation 0.1, hue 0.05, the values of the authors' published configuration (the algorithm's
    parameters did not survive in the thesis text). Saturation and hue leave one-channel images unchanged.

    .. code-block:: python

        import torch
        from monai_skinattr.metrics import default_views

        print(default_views()(torch.rand(3, 8, 8)).shape)  # torch.Size([3, 8, 8]), a jittered copy
    """
    return ColorJitter(brightness=0.1, contrast=0.05, saturation=0.1, hue=0.05)


def _seed(*keys: int) -> int:
    """A 32-bit seed that depends on ``keys`` only (numpy's ``SeedSequence`` hashing)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def _view(views: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, seed: int) -> torch.Tensor:
    """``views(image)`` with its randomness fixed by ``seed`` (torch's global generator and MONAI's own)."""
    if isinstance(views, Randomizable):
        views.set_random_state(seed=seed)
    torch.manual_seed(seed)
    return views(image)


def _image(item: torch.Tensor | np.ndarray | Mapping, image_key: str) -> torch.Tensor:
    return convert_to_tensor(item[image_key] if isinstance(item, Mapping) else item, torch.float32, track_meta=False)


def robustness_score(
    encoder: nn.Module | Callable[[torch.Tensor], Sequence[torch.Tensor]],
    data: Sequence,
    level: int = -2,
    pool: bool = True,
    distance: str = "cosine",
    margin: float = 0.5,
    views: Callable[[torch.Tensor], torch.Tensor] | None = None,
    image_key: str = "image",
    seed: int = 0,
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> float:
    """
    Robustness of an encoder's representation of a dataset (thesis Eq. 4.2):
    ``1 - mean_i max(0, d(f(q_i), f(k_i+)) - d(f(q_i), f(k_i-)) + margin)``, where the anchor ``q_i`` and the
    positive ``k_i+`` are two random views of image ``i`` and the negative ``k_i-`` is a third, independently drawn
    view of an image ``j != i`` chosen uniformly at random among all the other images of ``data``. ``f`` is the
    encoder's feature map at ``level`` (the second-to-last by default), globally average-pooled to a vector or
    flattened. The thesis pools when only the decoder will be trained and does not pool for full training.

    Every random choice is a function of ``(seed, image index, role)`` only: the negatives are drawn once for the
    whole dataset and each view runs under its own derived seed. The score is therefore the same for any
    ``batch_size`` and whatever the global random state, which the call leaves untouched.

    .. code-block:: python

        import torch
        from monai_skinattr.metrics import robustness_score

        images = [torch.eye(3)[k].reshape(3, 1, 1) for k in range(3)]  # three orthogonal "images"
        print(robustness_score(lambda x: [x, x], images, views=lambda x: x))  # 1.0: negatives are never the anchor

    Args:
        encoder: maps a ``(B, C, H, W)`` batch to its list of per-level feature maps (``net.encoder`` of this
            package's networks). Modules are evaluated in ``eval`` mode and their mode is restored.
        data: the target dataset, indexable: ``(C, H, W)`` images in [0, 1] (tensors or arrays) or dicts holding
            them under ``image_key``; a MONAI ``Dataset`` with deterministic transforms works. Not a data loader:
            negatives are drawn over the whole dataset by index.
        level: index of the feature level in the encoder's output.
        pool: average the feature map over its spatial dimensions (else flatten it).
        distance: ``"cosine"`` (``1 - cos``, thesis Eq. 4.3, its final choice), ``"l2"`` (mean squared
            difference of the features, the authors' ``l2_loss``) or ``"pearson"`` (``1 -`` Pearson correlation of
            the two feature vectors). The thesis names the last two "the (inverse of the) L2 distance and the
            Pearson correlation coefficient" without a formula; these are the forms of the authors' code.
        margin: the triplet margin (the thesis' ε, 0.5).
        views: random view of one ``(C, H, W)`` image; torch's generator or, for MONAI ``Randomizable``
            transforms, their own state is seeded per view. Default :func:`default_views`.
        image_key: key of the image in dict items.
        seed: non-negative seed of the negatives and the views.
        batch_size: anchors per encoder call (each call encodes ``3 * batch_size`` views); no effect on the value.
        device: where to run the encoder (default: the device of its first parameter, else CPU).

    Raises:
        ValueError: unknown ``distance``, or fewer than two images.
    """
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be one of {list(_DISTANCES)}, got '{distance}'.")
    n = len(data)
    if n < 2:
        raise ValueError(f"robustness needs at least two images (a negative is another image), got {n}.")
    views = views or default_views()
    measure = _DISTANCES[distance]
    others = torch.randint(n - 1, (n,), generator=torch.Generator().manual_seed(_seed(seed, _NEGATIVE_INDEX)))
    negatives = (others + (others >= torch.arange(n))).tolist()  # uniform over j != i
    if device is None:
        params = list(encoder.parameters()) if isinstance(encoder, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    was_training = isinstance(encoder, nn.Module) and encoder.training
    if isinstance(encoder, nn.Module):
        encoder.eval()
    hinges = []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for start in range(0, n, batch_size):
                anchors = range(start, min(start + batch_size, n))
                images = {k: _image(data[k], image_key) for k in {*anchors, *(negatives[i] for i in anchors)}}
                batch = [_view(views, images[i], _seed(seed, i, _ANCHOR)) for i in anchors]
                batch += [_view(views, images[i], _seed(seed, i, _POSITIVE)) for i in anchors]
                batch += [_view(views, images[negatives[i]], _seed(seed, i, _NEGATIVE)) for i in anchors]
                features = encoder(torch.stack(batch).to(device))[level]
                features = features.flatten(2).mean(dim=2) if pool else features.flatten(1)
                q, k_pos, k_neg = features.double().chunk(3)
                hinges.append(F.relu(measure(q, k_pos) - measure(q, k_neg) + margin).cpu())
    finally:
        if was_training:
            encoder.train()
    return float(1.0 - torch.cat(hinges).mean())


def select_offline(scores: Sequence[float]) -> int:
    """
    "Offline" selection (thesis section 4.1): the index of the highest robustness once every checkpoint is scored,
    the earliest one on a tie. The thesis excludes the random initialisation only from the online rule; pass
    ``scores[1:]`` (and add 1) to exclude it here too.

    .. code-block:: python

        print(select_offline([0.9, 0.5, 0.7, 0.7]))  # 0
    """
    if len(scores) == 0:
        raise ValueError("no scores to select from.")
    return int(np.argmax(scores))


def select_online(scores: Sequence[float]) -> int:
    """
    "Online" selection while pretraining runs (thesis section 4.2, Figure 4.2): the first local maximum of the
    robustness ``scores`` of successive checkpoints, ``scores[0]`` being the random initialisation, which is
    disregarded. That is the checkpoint just before the first strict fall after index 1 (on a plateau followed by
    a fall, its last checkpoint), where pretraining would stop; the last checkpoint if the scores never fall.

    .. code-block:: python

        print(select_online([0.9, 0.5, 0.6, 0.55, 0.8]))  # 2
    """
    if len(scores) < 2:
        raise ValueError("online selection needs the random-init score and at least one checkpoint.")
    return next((i for i in range(1, len(scores) - 1) if scores[i] > scores[i + 1]), len(scores) - 1)


def transferability_indicator_score(
    downstream: Sequence[float], robustness: Sequence[float] | None = None, selected: int | None = None
) -> float:
    """
    Transferability indicator score (thesis Eq. 3.1): ``m(f'_θ*) / max_θ m(f'_θ)``, the downstream score of the
    initialisation the indicator picks over the best downstream score of all of them. Θ is every initialisation
    trained downstream, the random one included (the thesis' 19: random and the 18 checkpoints; Table 4.1 scores
    "no pretraining" against the same maximum), so ``downstream`` lists all of them, and the maximum runs over all.
    θ* is :func:`select_offline` of ``robustness`` (aligned with ``downstream``) or the given ``selected`` index,
    e.g. ``select_online(robustness)``, ``0`` for no pretraining or the last index for full pretraining.

    .. code-block:: python

        from monai_skinattr.metrics import transferability_indicator_score

        dice = [0.80, 0.85, 0.90, 0.88]  # random init, then checkpoints
        print(transferability_indicator_score(dice, robustness=[0.7, 0.6, 0.65, 0.68]))  # 0.888... = 0.80 / 0.90

    Args:
        downstream: downstream metric (higher is better, positive best value) per initialisation.
        robustness: indicator value per initialisation; θ* is its argmax (the earliest on a tie).
        selected: index of θ*, instead of ``robustness``.

    Raises:
        ValueError: neither or both of ``robustness`` and ``selected``, lengths that differ, an index out of range,
            or a best downstream score that is not positive.
    """
    if (robustness is None) == (selected is None):
        raise ValueError("give exactly one of robustness and selected.")
    if robustness is not None:
        if len(robustness) != len(downstream):
            raise ValueError(f"{len(robustness)} robustness scores for {len(downstream)} downstream scores.")
        selected = select_offline(robustness)
    if not 0 <= selected < len(downstream):
        raise ValueError(f"selected index {selected} is out of range for {len(downstream)} downstream scores.")
    best = max(downstream)
    if not best > 0:
        raise ValueError(f"the best downstream score must be positive, got {best}.")
    return float(downstream[selected] / best)
