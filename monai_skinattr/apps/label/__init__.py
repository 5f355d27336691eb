"""
MONAI Label app serving the TATL bundle to annotators: the lesion, union and attribute maps of a photo from one
cascade pass (``infer``), fine-tuning from the labels they submit (``train``, each replaced model kept as a version,
``versions``), the next photo to label (``strategies``), uploads checked before they are stored (``checks``,
``datastore``), 4xx answers for malformed requests (``server``), and a first studies folder (``studies``). The app
needs the ``label`` extra (``pip install monai_skinattr[label]``) and serves a local studies folder.

.. code-block:: bash

    python -m monai_skinattr.apps.label init tatl_app        # the app folder MONAI Label runs (and writes logs to)
    monailabel start_server --app tatl_app --studies studies --conf bundle bundles/tatl --conf models all \\
        --uvicorn_app monai_skinattr.apps.label.server:app
    python -m monai_skinattr.apps.label versions bundles/tatl   # the models training replaced
    python -m monai_skinattr.apps.label restore bundles/tatl 1  # serve version 1 again
"""

from __future__ import annotations

import shutil
from pathlib import Path

from monai_skinattr.utils.io import staged_folder

__all__ = ["APP_DIR", "init_app"]

#: the MONAI Label app folder shipped with the package (its ``main.py`` names
#: :class:`monai_skinattr.apps.label.main.TATLLabelApp`); :func:`init_app` copies it to a folder of the user's
APP_DIR = Path(__file__).resolve().parent / "app"


def init_app(app_dir: str | Path) -> Path:
    """
    Write the MONAI Label app folder to ``app_dir`` (new or empty), for ``monailabel start_server --app``: MONAI
    Label loads its ``main.py`` and writes ``logs/``, ``model/``, ``bin/`` and ``lib/`` there, so the folder is the
    user's, never the installed package. Written under a temporary name beside ``app_dir``, then renamed.

    .. code-block:: python

        init_app("tatl_app")  # tatl_app/main.py
    """
    out = Path(app_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"'{out}' exists and is not an empty folder; the app folder is written to a new one.")
    with staged_folder(out) as staged:
        shutil.copy(APP_DIR / "main.py", staged / "main.py")
    return out
