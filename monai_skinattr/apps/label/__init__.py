"""
MONAI Label app serving the TATL bundle to annotators: the lesion, union and attribute maps of a photo from one
cascade pass (``infer``), fine-tuning from the labels they submit (``train``), the next photo to label
(``strategies``), uploads checked before they are stored (``checks``, ``datastore``), 4xx answers for malformed
requests (``server``), and a first studies folder (``studies``, also ``python -m monai_skinattr.apps.label.studies``).
``APP_DIR`` is the folder to pass to ``monailabel start_server --app``; the app needs the ``label`` extra
(``pip install monai_skinattr[label]``).

.. code-block:: bash

    monailabel start_server --app "$(python -c 'from monai_skinattr.apps.label import APP_DIR; print(APP_DIR)')" \\
        --studies studies --conf bundle bundles/tatl --conf models all \\
        --uvicorn_app monai_skinattr.apps.label.server:app
"""

from pathlib import Path

#: the MONAI Label app folder (its ``main.py`` names :class:`monai_skinattr.apps.label.main.TATLLabelApp`)
APP_DIR = Path(__file__).resolve().parent / "app"

__all__ = ["APP_DIR"]
