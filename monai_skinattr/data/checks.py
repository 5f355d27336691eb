"""Validation shared by the dataset readers: every problem is collected, then raised once with file names."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .images import MaskEncodingError, binary_mask, photo_image, upright

__all__ = [
    "DatasetLayoutError",
    "Problems",
    "read_2d",
    "draft",
    "check_2d_pairs",
    "check_photos",
    "check_channels",
    "channels",
    "partial_marker",
    "check_not_partial",
]


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


def partial_marker(root: str | Path, dataset: str, split: str) -> Path:
    """The file a synthetic generator keeps in ``root`` while it writes ``split`` of ``dataset`` (removed when done)."""
    return Path(root) / f".synthetic-{dataset}-{split}.partial"


def check_not_partial(root: str | Path, dataset: str, split: str) -> None:
    """
    Raise :class:`DatasetLayoutError` when ``root`` holds a synthetic ``split`` of ``dataset`` whose generation
    was interrupted (its in-progress marker is still there), so a half-written dataset is never read as complete.
    """
    marker = partial_marker(root, dataset, split)
    if not marker.is_file():
        return
    try:  # the generator stored its arguments in the marker: give the exact command that rewrites the folder
        params = json.loads(marker.read_text())
        args = [dataset, "--root", str(root), "--split", split]
        for key in ("n", "size", "seed", "year"):
            if key in params:
                args += [f"--{key}", *map(str, params[key] if isinstance(params[key], list) else [params[key]])]
        rerun = f"`python -m monai_skinattr.data.synthetic {shlex.join(args)}`"
    except (OSError, ValueError, TypeError):
        rerun = "the generator"
    raise DatasetLayoutError(
        root,
        [
            f"{marker.name}: the synthetic {dataset} '{split}' generation into '{root}' was interrupted before it "
            f"finished, so this folder holds only part of the dataset; delete the folder '{root}' and generate it "
            f"again, or rerun {rerun} (it overwrites the folder's files)"
        ],
    )


def read_2d(path: str | Path) -> np.ndarray:
    """Fully decode a 2D image file (so truncated or corrupt files fail here), as an (H, W[, C]) array."""
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def draft(im: Image.Image, long_side: int) -> Image.Image:
    """
    Ask PIL to decode the JPEG ``im`` (opened, not yet loaded) at the smallest of its DCT scales 1/1, 1/2, 1/4, 1/8
    whose long side is still at least ``long_side`` pixels (``Image.draft``: the decoder skips the finer frequencies,
    so a 1/4 scale decodes in a fraction of the time and memory of the full photo). Other formats and photos no
    longer than ``long_side`` are left as they are. Returns ``im``.

    .. code-block:: python

        with Image.open("ISIC_0014746.jpg") as im:  # 6642 x 4420
            print(draft(im, 1024).size)  # (1661, 1105): 1/4 scale (1/8 would be 831 x 553)
    """
    if 0 < long_side < max(im.size):
        ratio = long_side / max(im.size)
        im.draft(im.mode, (max(1, math.ceil(im.width * ratio)), max(1, math.ceil(im.height * ratio))))
    return im


def check_photos(
    paths: Iterable[str | Path], problems: Problems, image_channels: int | None = 3, desc: str = "checking photos"
) -> None:
    """
    Decode every photo in ``paths`` and report those that are unreadable (corrupt, truncated, not an image) or do not
    have ``image_channels`` channels. JPEGs are decoded at 1/8 scale (PIL ``draft``): every byte is still read, so a
    truncated file fails, in a fraction of the time of a full decode.

    .. code-block:: python

        problems = Problems()
        check_photos(["a.jpg", "b.png"], problems)
        problems.raise_if_any("photos/")
    """
    paths = list(paths)
    for path in tqdm(paths, desc=desc, unit="image", disable=len(paths) < 50):
        try:
            with Image.open(path) as im:
                arr = np.asarray(photo_image(draft(im, 1)))  # JPEGs at 1/8, the smallest scale
        except Exception as e:  # PIL raises several types for corrupt files
            problems.append(f"{path}: unreadable image ({e})")
            continue
        check_channels(arr, image_channels, path, "image", problems)


def channels(arr: np.ndarray) -> int:
    """Number of channels of an (H, W[, C]) image array (1 for (H, W))."""
    return 1 if arr.ndim == 2 else int(arr.shape[2])


def check_channels(arr: np.ndarray, expected: int | None, path: str | Path, what: str, problems: Problems) -> None:
    """Report ``path`` when the (H, W[, C]) ``arr`` does not have ``expected`` channels (``None``: any)."""
    names = {1: "greyscale", 2: "greyscale + alpha", 3: "RGB", 4: "RGBA or CMYK"}
    n = channels(arr)
    if expected is not None and n != expected:
        problems.append(
            f"{path}: {what} has {n} channel(s) ({names.get(n, 'unknown')}), expected {expected} "
            f"({names.get(expected, '?')})"
        )


def check_2d_pairs(
    entries: Iterable[dict],
    image_key: str,
    mask_keys: Sequence[str],
    problems: Problems,
    desc: str = "checking",
    image_channels: int | None = None,
    mask_channels: int | None = None,
) -> None:
    """
    Decode every image and mask of ``entries`` (entries may lack some masks: a missing file is the caller's report);
    report unreadable files, size mismatches (in the displayed frame: photos and masks turned upright by their EXIF
    orientation), masks that are not two-level binary in one of the encodings of
    :data:`~monai_skinattr.data.images.MASK_LEVELS`, and images / masks without ``image_channels`` /
    ``mask_channels`` channels (``None``: not checked).

    .. code-block:: python

        problems = Problems()
        check_2d_pairs(datalist, "image", ["label"], problems, image_channels=3, mask_channels=1)
        problems.raise_if_any("/data/ISIC2018")
    """
    entries = list(entries)
    for entry in tqdm(entries, desc=desc, unit="image", disable=len(entries) < 50):
        try:
            with Image.open(entry[image_key]) as im:
                image = np.asarray(photo_image(im))
        except Exception as e:  # PIL raises several types for corrupt files
            problems.append(f"{entry[image_key]}: unreadable image ({e})")
            size = None
        else:
            size = image.shape[:2]
            check_channels(image, image_channels, entry[image_key], "image", problems)
        for key in mask_keys:
            path = entry.get(key)
            if path is None:
                continue
            try:
                with Image.open(path) as im:
                    mask = np.asarray(upright(im))
            except Exception as e:
                problems.append(f"{path}: unreadable mask ({e})")
                continue
            if size is not None and mask.shape[:2] != size:
                problems.append(f"{path}: mask size {mask.shape[:2]} differs from image size {size}")
            check_channels(mask, mask_channels, path, "mask", problems)
            if mask_channels is None or channels(mask) == mask_channels:
                try:
                    binary_mask(mask, path)
                except MaskEncodingError as e:
                    problems.append(str(e))
