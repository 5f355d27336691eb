"""The served cascade's earlier versions: each training keeps the model it replaces, one call restores any of them."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from monai_skinattr.utils.io import file_sha256

__all__ = ["VERSIONS_DIR", "SERVED_FILES", "keep_version", "list_versions", "restore_version"]

#: where the versions lie, under the bundle's ``models/``: ``versions/<n>/``
VERSIONS_DIR = "versions"
#: what a version is: the assembled cascade, how it was built, and what trained it (when something did)
SERVED_FILES = ("model.pt", "cascade.json", "label_train.json")


def keep_version(models_dir: str | Path) -> int:
    """
    Copy the served ``models/model.pt`` (with its ``cascade.json`` and ``label_train.json``) to the next numbered
    ``models/versions/<n>/`` (written under a temporary name, then renamed) and return ``n`` (1, 2, ...).

    .. code-block:: python

        keep_version("bundles/tatl/models")  # 1: bundles/tatl/models/versions/1/model.pt
    """
    models = Path(models_dir)
    root = models / VERSIONS_DIR
    root.mkdir(exist_ok=True)
    number = max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0) + 1
    tmp = root / f".{number}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name in SERVED_FILES:
        if (models / name).is_file():
            shutil.copy2(models / name, tmp / name)
    record = {"kept": time.strftime("%Y-%m-%d %H:%M:%S"), "model_sha256": file_sha256(tmp / "model.pt")}
    (tmp / "version.json").write_text(json.dumps(record, indent=2))
    tmp.rename(root / str(number))
    return number


def list_versions(models_dir: str | Path) -> list[dict]:
    """
    The kept versions, oldest first: ``{"version", "kept", "model_sha256", "trained"}`` (``trained``: when the
    training that made it finished, if one did).

    .. code-block:: python

        list_versions("bundles/tatl/models")  # [{'version': 1, 'kept': '2026-12-07 18:40:00', ...}]
    """
    root = Path(models_dir) / VERSIONS_DIR
    found = []
    for folder in sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name)):
        record = json.loads((folder / "version.json").read_text())
        train = folder / "label_train.json"
        trained = json.loads(train.read_text()).get("finished") if train.is_file() else None
        found.append({"version": int(folder.name), **record, "trained": trained})
    return found


def restore_version(models_dir: str | Path, version: int) -> int:
    """
    Serve kept version ``version`` again: the served model is kept first as a new version (so a restore can be
    undone), then the version's files replace the served ones, each atomically; the server serves the restored model
    from its next request. Returns the number the replaced model was kept as.

    .. code-block:: python

        restore_version("bundles/tatl/models", 1)  # 3: the model served until now is versions/3
    """
    models = Path(models_dir)
    source = models / VERSIONS_DIR / str(int(version))
    if not (source / "model.pt").is_file():
        kept = [v["version"] for v in list_versions(models)]
        raise FileNotFoundError(f"no version {version} under {models / VERSIONS_DIR}; the versions are {kept}")
    kept_as = keep_version(models)
    for name in ("cascade.json", "label_train.json", "model.pt"):  # the checkpoint last: its change starts new passes
        target = models / name
        if (source / name).is_file():
            shutil.copy(source / name, models / f".{name}.restore")  # a new mtime: the server reloads
            os.replace(models / f".{name}.restore", target)
        elif target.is_file():
            target.unlink()  # the restored version had not been trained here
    return kept_as
