"""Validation shared by the dataset readers: every problem is collected, then raised once with file names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

__all__ = ["DatasetLayoutError", "Problems", "read_2d", "check_2d_pairs", "is_binary"]


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the expected layout or content; ``problems`` lists every issue found."""

    def __init__(self, root: str | Path, problems: Sequence[str]) -> None:
        self.root = Path(root)
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{len(self.problems)} problem(s) in dataset '{self.root}':\n{shown}{more}")


class Problems(list):
    """A list of problem strings that raises :class:`DatasetLayoutError` when asked and not empty."""

    def raise_if_any(self, root: str | Path) -> None:
        if self:
            raise DatasetLayoutError(root, self)


def read_2d(path: str | Path) -> np.ndarray:
    """Fully decode a 2D image file (so truncated or corrupt files fail here), as an (H, W[, C]) array."""
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def is_binary(arr: np.ndarray) -> bool:
    """Whether ``arr`` holds only {0, 1} or only {0, 255} (an empty mask counts as binary)."""
    values = np.unique(arr)
    return bool(np.isin(values, (0, 1)).all() or np.isin(values, (0, 255)).all())


def check_2d_pairs(
    entries: Iterable[dict], image_key: str, mask_keys: Sequence[str], problems: Problems, desc: str = "checking"
) -> None:
    """Decode every image and mask of ``entries``; report unreadable files, size mismatches, non-binary masks."""
    entries = list(entries)
    for entry in tqdm(entries, desc=desc, unit="image", disable=len(entries) < 50):
        try:
            size = read_2d(entry[image_key]).shape[:2]
        except Exception as e:  # PIL raises several types for corrupt files
            problems.append(f"{entry[image_key]}: unreadable image ({e})")
            size = None
        for key in mask_keys:
            path = entry.get(key)
            if path is None:
                continue
            try:
                mask = read_2d(path)
            except Exception as e:
                problems.append(f"{path}: unreadable mask ({e})")
                continue
            if size is not None and mask.shape[:2] != size:
                problems.append(f"{path}: mask size {mask.shape[:2]} differs from image size {size}")
            if not is_binary(mask):
                problems.append(f"{path}: mask is not binary (values {np.unique(mask)[:8].tolist()}...)")
