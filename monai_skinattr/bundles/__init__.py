"""
The five method bundles shipped with the package (one MONAI Bundle per method), and copying one to a folder of the
user's choosing, where ``python -m monai.bundle run`` runs it and its runs write their models, data and tables.

.. code-block:: bash

    python -m monai_skinattr.bundles list
    python -m monai_skinattr.bundles init tatl ./tatl
    python -m monai.bundle run --config_file "['tatl/configs/common.json','tatl/configs/pipeline.json']" \\
        --bundle_root tatl

.. code-block:: python

    from monai_skinattr.bundles import init_bundle
    init_bundle("tatl", "./tatl")  # PosixPath('tatl'): configs/, docs/README.md, LICENSE
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from monai_skinattr.utils.io import staged_folder

__all__ = [
    "BUNDLES_DIR",
    "META_SCHEMA",
    "MAIN_CONFIG",
    "BUNDLE_FILES",
    "bundle_dir",
    "bundle_files",
    "init_bundle",
    "main_command",
]

#: where the shipped bundles are
BUNDLES_DIR = Path(__file__).resolve().parent
#: the model zoo's metadata schema, for ``python -m monai.bundle verify_metadata --filepath`` without internet
META_SCHEMA = BUNDLES_DIR / "meta_schema.json"
#: each bundle's one-command table: the config run on top of its ``common.json``
MAIN_CONFIG = {
    "tatl": "pipeline.json",
    "mobilenet_unet": "pipeline.json",
    "iscf": "ablation.json",
    "input_transfer": "pipeline.json",
    "transfer": "study.json",
}
#: what a bundle is made of; its runs' outputs (``models/``, ``data/``, ``eval/``, ``experiments/``) are not copied
BUNDLE_FILES = ("configs", "docs", "LICENSE")


def bundle_dir(name: str) -> Path:
    """
    The shipped bundle ``name`` (one of :data:`MAIN_CONFIG`); ``ValueError`` naming the bundles otherwise.

    .. code-block:: python

        bundle_dir("iscf") / "configs" / "metadata.json"
    """
    if name not in MAIN_CONFIG:
        raise ValueError(f"no bundle '{name}'; the bundles are {', '.join(MAIN_CONFIG)}.")
    return BUNDLES_DIR / name


def init_bundle(name: str, bundle_root: str | Path) -> Path:
    """
    Copy the shipped bundle ``name`` (its configs, docs and licence) to ``bundle_root``, a new or empty folder, as
    ``monai.bundle init_bundle`` and ``download`` make a bundle folder. The copy is written under a temporary name
    beside ``bundle_root`` and renamed when complete, so a failed copy leaves nothing behind. A folder already
    holding an unchanged copy is left as it is (with its runs' outputs); any other non-empty folder is an error,
    so edited configs are never overwritten.

    .. code-block:: python

        init_bundle("mobilenet_unet", "runs/mobilenet_unet")

    Returns:
        ``bundle_root``.
    """
    source = bundle_dir(name)
    out = Path(bundle_root)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        changed = _differences(source, out) if (out / "configs").is_dir() else None
        if changed == []:
            return out  # an earlier copy, unchanged: its runs' outputs are kept
        what = f"a copy of '{name}' that differs in {changed[:5]}" if changed else "not an empty folder"
        raise FileExistsError(f"'{out}' exists and is {what}; the bundle is copied into a new or empty folder.")
    with staged_folder(out) as staged:
        for item in BUNDLE_FILES:
            if (source / item).is_dir():
                shutil.copytree(source / item, staged / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source / item, staged / item)
    return out


def bundle_files(root: str | Path) -> list[str]:
    """
    The files of the bundle folder ``root`` that make the bundle (:data:`BUNDLE_FILES`), relative, sorted.

    .. code-block:: python

        bundle_files(bundle_dir("iscf"))  # ['LICENSE', 'configs/ablation.json', ..., 'docs/README.md']
    """
    root = Path(root)
    found = [root / item for item in BUNDLE_FILES if (root / item).is_file()]
    found += [f for item in BUNDLE_FILES if (root / item).is_dir() for f in (root / item).rglob("*") if f.is_file()]
    return sorted(str(f.relative_to(root)) for f in found if "__pycache__" not in f.parts)


def _differences(source: Path, copy: Path) -> list[str]:
    """The bundle files that ``copy`` lacks or holds with other content than ``source``."""
    return [f for f in bundle_files(source) if not (copy / f).is_file() or not filecmp.cmp(source / f, copy / f, False)]


def main_command(name: str, bundle_root: str | Path) -> str:
    """
    The command that runs bundle ``name``'s one-command table from the folder ``bundle_root`` holds.

    .. code-block:: python

        main_command("tatl", "tatl")
        # python -m monai.bundle run --config_file "['tatl/configs/common.json','tatl/configs/pipeline.json']" ...
    """
    root = Path(bundle_root).as_posix()
    files = ",".join(f"'{root}/configs/{c}'" for c in ("common.json", MAIN_CONFIG[name]))
    return f'python -m monai.bundle run --config_file "[{files}]" --bundle_root {root}'


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m monai_skinattr.bundles", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the shipped bundles, their versions and folders")
    init = commands.add_parser("init", help="copy a bundle to a new folder")
    init.add_argument("name", choices=list(MAIN_CONFIG))
    init.add_argument("bundle_root", help="the new (or empty) folder")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in MAIN_CONFIG:
            meta = json.loads((bundle_dir(name) / "configs" / "metadata.json").read_text())
            print(f"{name}\t{meta['version']}\t{bundle_dir(name)}")
        return
    root = Path(args.bundle_root)
    existed = root.is_dir() and any(root.iterdir())
    try:
        init_bundle(args.name, root)
    except FileExistsError as e:
        parser.error(str(e))
    done = "already holds an unchanged copy of" if existed else "now holds"
    print(f"{root} {done} bundle '{args.name}'; its one-command table (docs: {root / 'docs' / 'README.md'}):")
    print(main_command(args.name, root))
