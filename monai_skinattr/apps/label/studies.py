"""A studies folder for a first try of the TATL MONAI Label app: ISIC photos, some with their masks as labels."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from monai_skinattr.data import isic_datalist, synthetic
from monai_skinattr.data.images import read_mask
from monai_skinattr.data.isic import ATTRIBUTES
from monai_skinattr.utils.io import staged_folder

__all__ = ["prepare_studies", "main"]


def prepare_studies(
    studies_dir: str | Path,
    n: int = 20,
    size: Sequence[int] = (192, 256),
    seed: int = 0,
    labelled: int = 0,
    dataset_dir: str | Path | None = None,
) -> Path:
    """
    Write a MONAI Label studies folder: ``n`` dermoscopy photos ``<id>.jpg`` and, for the first ``labelled`` of
    them, their ground-truth masks as submitted labels (``labels/lesion/<id>.png``, ``labels/<attribute>/<id>.png``,
    0/255), so ``/train`` has something to learn from at once. The photos come from the ISIC 2017/2018 training
    split in ``dataset_dir`` or, by default, from the synthetic ISIC 2018 generator (``n`` photos of ``size``
    ``(height, width)``, ``seed``). The folder is written under a temporary name beside ``studies_dir`` and renamed
    when complete; an existing non-empty ``studies_dir`` is an error.

    .. code-block:: python

        prepare_studies("studies", n=12, labelled=2)  # studies/ISIC_0000000.jpg ..., studies/labels/lesion/...

    Returns:
        ``studies_dir``.
    """
    out = Path(studies_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"'{out}' exists and is not empty; the studies go into a new or empty folder.")
    if not 0 <= labelled <= n:
        raise ValueError(f"labelled must be between 0 and n={n}, got {labelled}.")
    with tempfile.TemporaryDirectory() as scratch, staged_folder(out) as staged:
        source = Path(dataset_dir) if dataset_dir is not None else Path(scratch) / "isic"
        if dataset_dir is None:
            synthetic.make_isic(source, n=n, size=tuple(size), seed=seed, progress=False)
        items = isic_datalist(source, task=2, validate=False)[:n]
        for i, item in enumerate(items):
            shutil.copy(item["image"], staged / f"{item['id']}{Path(item['image']).suffix.lower()}")
            if i >= labelled:
                continue
            for tag in ["lesion", *ATTRIBUTES]:
                if tag in item:
                    (staged / "labels" / tag).mkdir(parents=True, exist_ok=True)
                    mask = read_mask(item[tag]).astype(np.uint8) * 255
                    Image.fromarray(mask).save(staged / "labels" / tag / f"{item['id']}.png")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m monai_skinattr.apps.label.studies OUT [--n N] [--size H W] [--labelled K]``."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_skinattr.apps.label.studies", description=__doc__.split("\n")[0]
    )
    parser.add_argument("studies_dir", help="folder to create (new or empty)")
    parser.add_argument("--n", type=int, default=20, help="number of photos")
    parser.add_argument("--size", type=int, nargs=2, default=[192, 256], help="synthetic photo height and width")
    parser.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    parser.add_argument("--labelled", type=int, default=0, help="photos whose masks are copied as labels")
    parser.add_argument("--dataset_dir", default=None, help="ISIC 2017/2018 folder to take photos from instead")
    args = parser.parse_args(argv)
    out = prepare_studies(args.studies_dir, args.n, args.size, args.seed, args.labelled, args.dataset_dir)
    photos = [p for p in out.iterdir() if p.is_file()]
    print(f"wrote {len(photos)} photo(s), {args.labelled} of them labelled, to {out}")


if __name__ == "__main__":
    main()
