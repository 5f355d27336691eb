"""CVC-ColonDB colonoscopy frames with polyp masks, in its common public layout (``images/`` + ``masks/``).

.. code-block:: python

    from monai_skinattr.data.cvc import cvc_colondb_datalist

    data = cvc_colondb_datalist("/data/CVC-ColonDB")
"""

from __future__ import annotations

import re
from pathlib import Path

from .checks import Problems, check_2d_pairs, check_not_partial

__all__ = ["FOLDER", "SUFFIXES", "colondb_root", "cvc_colondb_datalist"]

#: the dataset folder some releases put the two folders in (e.g. PraNet's ``TestDataset/CVC-ColonDB``).
FOLDER = "CVC-ColonDB"
#: image and mask file formats accepted; a frame and its mask share a name and may differ in format.
SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")


def colondb_root(root: str | Path) -> Path:
    """The folder holding ``images/`` and ``masks/``: ``root`` itself or its ``CVC-ColonDB`` sub-folder."""
    root = Path(root)
    return root / FOLDER if not (root / "images").is_dir() and (root / FOLDER).is_dir() else root


def _natural(name: str) -> list:
    """Sort key putting ``2.png`` before ``10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _by_stem(folder: Path, problems: Problems) -> dict[str, Path]:
    """Image files of ``folder`` by name without suffix; two files of one name are reported."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir(), key=lambda p: _natural(p.name)):
        if path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
            continue
        if path.stem in files:
            problems.append(f"{path}: two files named '{path.stem}' ({files[path.stem].name}, {path.name})")
        files.setdefault(path.stem, path)
    return files


def cvc_colondb_datalist(root: str | Path, validate: bool = True) -> list[dict]:
    """
    Datalist ``[{"image", "label", "id"}]`` of the CVC-ColonDB frames and their polyp masks, in natural order of
    the file names (``1, 2, ..., 10``); ``id`` is the name without suffix. There is no official split: the deep
    input transfer paper tests on 50 frames, e.g. ``train, test = carve_validation(data, fraction=50, seed=0)``
    (:func:`monai_skinattr.data.carve_validation`).

    Args:
        root: the folder holding ``images/`` and ``masks/``, or the folder holding ``CVC-ColonDB/``. Files are
            ``.png``, ``.tif``, ``.tiff``, ``.bmp`` or ``.jpg``; a frame and its mask have the same name.
        validate: decode every file and check mask sizes and values.

    Raises:
        FileNotFoundError: the ``images`` or ``masks`` folder does not exist.
        DatasetLayoutError: no frames, a frame without a mask or a mask without a frame, two files of one name,
            unreadable files, mask size mismatch, non-binary masks, or an interrupted synthetic generation.
    """
    folder = colondb_root(root)
    for candidate in dict.fromkeys((Path(root), folder, folder.parent if folder.name == FOLDER else folder)):
        check_not_partial(candidate, "cvc_colondb", "training")
    image_dir, mask_dir = folder / "images", folder / "masks"
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"missing CVC-ColonDB folder '{d}' (expected images/ and masks/ in '{folder}').")
    problems = Problems()
    images, masks = _by_stem(image_dir, problems), _by_stem(mask_dir, problems)
    if not images:
        problems.append(f"{image_dir}: no frames ({', '.join(SUFFIXES)})")
    entries = []
    for name, path in images.items():
        if name in masks:
            entries.append({"image": str(path), "label": str(masks[name]), "id": name})
        else:
            problems.append(f"{path}: no mask named '{name}' in {mask_dir}")
    problems.extend(f"{masks[n]}: mask without a matching frame" for n in masks if n not in images)
    if validate:
        check_2d_pairs(entries, "image", ["label"], problems, desc="checking CVC-ColonDB")
    problems.raise_if_any(folder)
    return entries
