"""Deterministic, optionally stratified k-fold splits and validation hold-outs of a datalist.

Stratification balances the presence of foreground under some keys (e.g. TATL's five ISIC attributes): each entry
joins the stratum of its rarest present key (or "none"), so the entries with the rarest key are spread evenly.

.. code-block:: python

    from monai_skinattr.data import ATTRIBUTES, isic_datalist, kfold
    from monai_skinattr.data.folds import carve_validation, fold_split

    folds = kfold(isic_datalist("/data/ISIC2018", task=2), k=5, seed=0, stratify_by=ATTRIBUTES)
    train, test = fold_split(folds, 0)
    train, val = carve_validation(train, fraction=0.2, seed=0, stratify_by=ATTRIBUTES)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from .images import read_mask

__all__ = ["kfold", "fold_split", "carve_validation", "presence"]


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
            has = bool(np.any(read_mask(value)))
        if has:
            present.add(key)
    return present


def _strata(datalist: Sequence[dict], stratify_by: Sequence[str], seed: int) -> list[np.ndarray]:
    """Indices of ``datalist`` per stratum (rarest present key first, "none" last), each in a seeded order."""
    present = [
        presence(e, stratify_by) for e in tqdm(datalist, desc="reading masks for strata", disable=len(datalist) < 200)
    ]
    counts = Counter(a for p in present for a in p)
    rank = {a: i for i, a in enumerate(sorted(counts, key=lambda a: (counts[a], a)))}
    strata = [min(p, key=rank.get) if p else None for p in present]
    rng = np.random.default_rng(seed)
    order = [*sorted(rank, key=rank.get), None]
    return [rng.permutation([i for i, s in enumerate(strata) if s == stratum]).astype(int) for stratum in order]


def kfold(datalist: Sequence[dict], k: int = 5, seed: int = 0, stratify_by: Sequence[str] = ()) -> list[list[dict]]:
    """
    Split ``datalist`` into ``k`` disjoint folds of near-equal size (sizes differ by at most one), shuffled with
    ``seed``. With ``stratify_by``, every entry is assigned to the stratum of its rarest present key (or to
    "none"), and strata are dealt round-robin over the folds, rarest first, so the entries with the rarest key
    differ by at most one between folds.

    .. code-block:: python

        folds = kfold(data, k=5, seed=0, stratify_by=("streaks", "globules"))

    Args:
        datalist: entries; with ``stratify_by``, holding mask paths (or 0/1 flags) under those keys.
        k: number of folds (>= 2).
        seed: seed of the shuffle within strata; the same seed and datalist give the same folds.
        stratify_by: keys whose presence is balanced; ``()`` (default) gives plain shuffled folds.

    Returns:
        ``k`` lists of entries (the original dicts, not copies).
    """
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}.")
    if len(datalist) < k:
        raise ValueError(f"cannot make {k} folds from {len(datalist)} entries.")
    folds: list[list[dict]] = [[] for _ in range(k)]
    turn = 0
    for members in _strata(datalist, stratify_by, seed):
        for i in members:
            folds[turn % k].append(datalist[i])
            turn += 1
    return folds


def fold_split(folds: Sequence[Sequence[dict]], index: int) -> tuple[list[dict], list[dict]]:
    """``(train, validation)`` for cross-validation round ``index``: fold ``index`` validates, the rest train."""
    if not 0 <= index < len(folds):
        raise IndexError(f"fold index {index} out of range for {len(folds)} folds.")
    train = [e for j, f in enumerate(folds) if j != index for e in f]
    return train, list(folds[index])


def carve_validation(
    datalist: Sequence[dict], fraction: float | int = 0.2, seed: int = 0, stratify_by: Sequence[str] = ()
) -> tuple[list[dict], list[dict]]:
    """
    Hold out a validation set from training data, deterministically: ``(train, val)``, disjoint, together all of
    ``datalist`` (in its order), each with at least one entry. With ``stratify_by``, strata are formed as in
    :func:`kfold` and each gives the validation set its proportional share (largest remainders), so the count of
    the rarest key in ``val`` is within one of ``fraction`` of its total.

    .. code-block:: python

        train, val = carve_validation(fold_train, fraction=0.2, seed=0, stratify_by=ATTRIBUTES)

    Args:
        datalist: entries (at least two); with ``stratify_by``, holding mask paths (or 0/1 flags) under those keys.
        fraction: share of entries to validate on, in (0, 1), or an ``int`` number of entries.
        seed: seed of the choice; the same seed and datalist give the same split.
        stratify_by: keys whose presence is balanced; ``()`` (default) gives a plain random hold-out.
    """
    n = len(datalist)
    if n < 2:
        raise ValueError(f"cannot carve a validation set from {n} entries; at least 2 are needed.")
    if isinstance(fraction, (int, np.integer)) and not isinstance(fraction, bool):
        n_val = int(fraction)
    elif 0 < fraction < 1:
        n_val = min(max(round(fraction * n), 1), n - 1)
    else:
        raise ValueError(f"fraction must be in (0, 1) or a number of entries, got {fraction}.")
    if not 1 <= n_val <= n - 1:
        raise ValueError(f"a validation set of {n_val} entries leaves no training entry or is empty (n={n}).")
    strata = [s for s in _strata(datalist, stratify_by, seed) if len(s)]
    quotas = np.asarray([len(s) * n_val / n for s in strata])
    take = np.floor(quotas).astype(int)
    # largest remainders get the leftover places; ties go to the rarer stratum (stable sort keeps that order)
    for j in np.argsort(-(quotas - take), kind="stable")[: n_val - take.sum()]:
        take[j] += 1
    val_index = {int(i) for s, t in zip(strata, take, strict=True) for i in s[:t]}
    train = [e for i, e in enumerate(datalist) if i not in val_index]
    val = [e for i, e in enumerate(datalist) if i in val_index]
    return train, val
