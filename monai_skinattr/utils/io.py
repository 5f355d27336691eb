"""Writers that never leave a half-written file: write under a temporary name, then rename."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

__all__ = [
    "file_sha256",
    "markdown_table",
    "read_metrics_csv",
    "remove_partials",
    "save_image_atomic",
    "save_nifti_atomic",
    "staged_folder",
    "write_bytes_atomic",
    "write_table",
    "write_text_atomic",
]

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def _tmp(path: Path) -> Path:
    return path.with_name(f".partial.{path.name}")


def remove_partials(folder: str | Path) -> list[Path]:
    """
    Delete the temporary files that writers of this module killed mid-write left under ``folder`` (recursively);
    returns their paths. The finished files they would have replaced are untouched.

    .. code-block:: python

        remove_partials("out")  # before resuming a run that writes into out/
    """
    stale = sorted(Path(folder).rglob(".partial.*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def save_image_atomic(array: np.ndarray, path: str | Path, quality: int = 95) -> None:
    """Write an (H, W[, C]) uint8 array as PNG/JPEG/TIFF (by suffix) at ``path``, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the image format of '{path}' from its suffix; use one of {sorted(_FORMATS)}.")
    kwargs = {"quality": quality} if fmt == "JPEG" else {}
    tmp = _tmp(path)
    Image.fromarray(array).save(tmp, format=fmt, **kwargs)
    os.replace(tmp, path)


def save_nifti_atomic(array: np.ndarray, affine: np.ndarray, path: str | Path) -> None:
    """Write ``array`` with ``affine`` as NIfTI at ``path`` (``.nii`` or ``.nii.gz``)."""
    path = Path(path)
    tmp = _tmp(path)
    nib.save(nib.Nifti1Image(array, affine), str(tmp))
    os.replace(tmp, path)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` at ``path``."""
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_bytes_atomic(data: bytes, path: str | Path) -> None:
    """Write ``data`` at ``path``."""
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


@contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """
    A folder written whole or not at all: the block fills an empty folder under a temporary name beside ``path``,
    which is renamed to ``path`` (replacing an empty folder there) when the block ends, and removed if it fails.

    .. code-block:: python

        with staged_folder("studies") as staged:
            (staged / "notes.txt").write_text("...")  # studies/notes.txt once the block is done
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        staged.mkdir()
        yield staged
        if out.exists():
            out.rmdir()
        staged.rename(out)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of the file at ``path``, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_table(
    out_dir: str | Path, stem: str, markdown: str, header: Sequence[str], rows: Sequence[Sequence], data: object
) -> None:
    """``<stem>.md``, ``.csv`` and ``.json`` in ``out_dir`` (atomic; the folder is made if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(markdown, out / f"{stem}.md")
    write_text_atomic(buffer.getvalue(), out / f"{stem}.csv")
    write_text_atomic(json.dumps(data, indent=2), out / f"{stem}.json")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], title: str = "", text_columns: int = 1) -> str:
    """A Markdown table (bold ``title`` above when given); the first ``text_columns`` are left-aligned, the rest
    right-aligned numbers."""
    head = f"**{title}**\n\n" if title else ""
    align = "|" + "---|" * text_columns + "---:|" * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", align, *("| " + " | ".join(map(str, row)) + " |" for row in rows)]
    return head + "\n".join(lines) + "\n"


def read_metrics_csv(folder: str | Path) -> dict[str, float]:
    """The metrics MONAI's ``MetricsSaver`` wrote to ``<folder>/metrics.csv`` (``name,value`` rows)."""
    with open(Path(folder) / "metrics.csv") as f:
        return {row[0]: float(row[1]) for row in csv.reader(f) if len(row) == 2}
