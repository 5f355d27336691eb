"""Deterministic, attribute-stratified k-fold splits of a datalist (TATL's 5-fold cross-validation).

.. code-block:: python

    from monai_skinattr.data import isic_datalist, kfold
    from monai_skinattr.data.folds import fold_split

    folds = kfold(isic_datalist("/data/ISIC2018", task=2), k=5, seed=0)
    train, val = fold_split(folds, 0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from .checks import read_2d
from .isic import ATTRIBUTES

__all__ = ["kfold", "fold_split", "presence"]


def presence(entry: dict, keys: Sequence[str]) -> set[str]:
    """The keys of ``entry`` whose mask has any foreground; a bool/int value is taken as the answer itself."""
    present = set()
    for key in keys:
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, (bool, int, np.integer, np.bool_)):
            has = bool(value)
        else:
            has = bool(np.any(read_2d(value)))
        if has:
            present.add(key)
    return present


def kfold(datalist: Sequence[dict], k: int = 5, seed: int = 0, stratify_by: Sequence[str] = ATTRIBUTES) -> list[list[dict]]:
    """
    Split ``datalist`` into ``k`` disjoint folds of near-equal size (sizes differ by at most one), stratified so
    that images showing each attribute are spread evenly: every image is assigned to the stratum of its rarest
    present attribute (or to "none"), and strata are dealt round-robin over the folds, rarest first, in a
    seeded random order. The images with the rarest attribute therefore differ by at most one between folds.

    Args:
        datalist: entries holding mask paths (or 0/1 flags) under the ``stratify_by`` keys.
        k: number of folds (>= 2).
        seed: seed of the shuffle within strata; the same seed and datalist give the same folds.
        stratify_by: keys whose presence is balanced; ``()`` gives plain shuffled folds.

    Returns:
        ``k`` lists of entries (the original dicts, not copies).
    """
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}.")
    if len(datalist) < k:
        raise ValueError(f"cannot make {k} folds from {len(datalist)} entries.")
    present = [presence(e, stratify_by) for e in tqdm(datalist, desc="reading masks for folds", disable=len(datalist) < 200)]
    counts = Counter(a for p in present for a in p)
    rank = {a: i for i, a in enumerate(sorted(counts, key=lambda a: (counts[a], a)))}
    strata = [min(p, key=rank.get) if p else None for p in present]
    rng = np.random.default_rng(seed)
    folds: list[list[dict]] = [[] for _ in range(k)]
    turn = 0
    for stratum in [*sorted(rank, key=rank.get), None]:
        members = [i for i, s in enumerate(strata) if s == stratum]
        for i in rng.permutation(members):
            folds[turn % k].append(datalist[i])
            turn += 1
    return folds


def fold_split(folds: Sequence[Sequence[dict]], index: int) -> tuple[list[dict], list[dict]]:
    """``(train, validation)`` for cross-validation round ``index``: fold ``index`` validates, the rest train."""
    if not 0 <= index < len(folds):
        raise IndexError(f"fold index {index} out of range for {len(folds)} folds.")
    train = [e for j, f in enumerate(folds) if j != index for e in f]
    return train, list(folds[index])
