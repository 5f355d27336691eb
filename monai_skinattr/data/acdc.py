"""ACDC (Automated Cardiac Diagnosis Challenge) layout: ``patientNNN/Info.cfg`` with ED/ES frames and their labels.

.. code-block:: python

    from monai_skinattr.data.acdc import acdc_datalist

    train = acdc_datalist("/data/ACDC/database", split="training")
    print(train[0])  # {'image': '.../patient001_frame01.nii.gz', 'label': '..._gt.nii.gz', 'phase': 'ED', ...}
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm import tqdm

from .checks import Problems, check_not_partial

__all__ = ["LABELS", "SPLITS", "acdc_datalist", "read_info"]

#: ACDC label values: 0 background, 1 right-ventricle cavity, 2 myocardium, 3 left-ventricle cavity.
LABELS = {0: "background", 1: "RV", 2: "MYO", 3: "LV"}
#: challenge split -> patient numbers (100 training, 50 testing).
SPLITS = {"training": range(1, 101), "testing": range(101, 151)}

_PATIENT = re.compile(r"^patient(\d{3})$")


def read_info(path: str | Path) -> dict[str, str]:
    """Parse an ACDC ``Info.cfg`` (``key: value`` lines) into a dict of strings."""
    info = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def acdc_datalist(
    root: str | Path, split: str = "training", phases: tuple[str, ...] = ("ED", "ES"), validate: bool = True
) -> list[dict]:
    """
    Datalist of the ED and ES frames of every patient of an ACDC split (the 4D ``_4d.nii.gz`` files are ignored).

    Entries are ``{"image", "label", "patient", "phase", "frame", "group"}``, sorted by patient and phase.

    Args:
        root: the ACDC ``database`` folder (holding ``training/`` and ``testing/``) or its parent.
        split: ``"training"`` (patients 1-100) or ``"testing"`` (101-150).
        phases: cardiac phases to include, from ``("ED", "ES")``.
        validate: read every frame and label; check shapes match and labels are in {0, 1, 2, 3}.

    Raises:
        DatasetLayoutError: missing/unparsable Info.cfg, missing frames, unreadable files, shape or label problems,
            or an interrupted synthetic generation.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got '{split}'.")
    root = Path(root)
    check_not_partial(root, "acdc", split)
    if (root / "database").is_dir():
        root = root / "database"
        check_not_partial(root, "acdc", split)
    if not set(phases) <= {"ED", "ES"}:
        raise ValueError(f"phases must be a subset of ('ED', 'ES'), got {phases}.")
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"missing ACDC split folder '{split_dir}'.")
    problems = Problems()
    entries = []
    patients = sorted(p for p in split_dir.iterdir() if p.is_dir() and _PATIENT.match(p.name))
    if not patients:
        problems.append(f"{split_dir}: no patientNNN folders")
    for pdir in patients:
        number = int(_PATIENT.match(pdir.name).group(1))
        if number not in SPLITS[split]:
            problems.append(f"{pdir}: patient number {number} does not belong to the {split} split")
        cfg = pdir / "Info.cfg"
        if not cfg.is_file():
            problems.append(f"{cfg}: missing")
            continue
        info = read_info(cfg)
        for phase in phases:
            try:
                frame = int(info[phase])
            except (KeyError, ValueError):
                problems.append(f"{cfg}: no integer '{phase}' frame")
                continue
            image = pdir / f"{pdir.name}_frame{frame:02d}.nii.gz"
            label = pdir / f"{pdir.name}_frame{frame:02d}_gt.nii.gz"
            missing = [p for p in (image, label) if not p.is_file()]
            problems.extend(f"{p}: missing" for p in missing)
            if not missing:
                entries.append(
                    {
                        "image": str(image),
                        "label": str(label),
                        "patient": pdir.name,
                        "phase": phase,
                        "frame": frame,
                        "group": info.get("Group", ""),
                    }
                )
    if validate:
        for entry in tqdm(entries, desc=f"checking ACDC {split}", unit="frame", disable=len(entries) < 50):
            _check_frame(entry, problems)
    problems.raise_if_any(root)
    return entries


def _check_frame(entry: dict, problems: Problems) -> None:
    try:
        image = nib.load(entry["image"])
        image.get_fdata(dtype=np.float32)
    except Exception as e:
        problems.append(f"{entry['image']}: unreadable NIfTI ({e})")
        return
    try:
        label = np.asarray(nib.load(entry["label"]).dataobj)
    except Exception as e:
        problems.append(f"{entry['label']}: unreadable NIfTI ({e})")
        return
    if image.shape != label.shape:
        problems.append(f"{entry['label']}: shape {label.shape} differs from image shape {image.shape}")
    extra = sorted(set(np.unique(label).tolist()) - set(LABELS))
    if extra:
        problems.append(f"{entry['label']}: label values {extra} outside {sorted(LABELS)}")
