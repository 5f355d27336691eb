"""ImageNet-style classification folders (``<root>/<split>/<class>/<image>``), as torchvision's ``ImageFolder``.

.. code-block:: python

    from monai_skinattr.data.imagefolder import imagefolder_datalist

    train, classes = imagefolder_datalist("/data/imagenet", split="train")
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from .checks import DatasetLayoutError, check_not_partial

__all__ = ["imagefolder_datalist"]


def imagefolder_datalist(root: str | Path, split: str = "train") -> tuple[list[dict], list[str]]:
    """
    ``([{"image", "label"}], classes)`` of ``<root>/<split>``: one sub-folder per class (sorted names give the
    class indices, as torchvision's ``ImageFolder``), images with the usual suffixes. ImageNet's ``train`` and
    ``val`` folders (``val`` rearranged into class folders) read as they are.

    Raises:
        DatasetLayoutError: no such split folder, no class folders, a class folder without images, or an
            interrupted synthetic generation.
    """
    base = Path(root) / split
    check_not_partial(root, "imagefolder", split)
    if not base.is_dir():
        raise DatasetLayoutError(root, [f"missing split folder '{base}' (expected <root>/{split}/<class>/<image>)"])
    try:
        classes, index = find_classes(str(base))
    except FileNotFoundError as e:
        raise DatasetLayoutError(base, [str(e)]) from None
    samples = make_dataset(str(base), index, extensions=IMG_EXTENSIONS, allow_empty=True)
    empty = sorted(set(classes) - {Path(p).parent.name for p, _ in samples})
    if empty:
        raise DatasetLayoutError(base, [f"class folder '{c}' holds no images" for c in empty])
    return [{"image": path, "label": label} for path, label in samples], classes
