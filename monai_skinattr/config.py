"""Bundle helpers: command-line switches that mean what they say, and running a bundle's configs from Python."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import monai.bundle
from monai.utils import str2bool

__all__ = ["as_bool", "run_bundle"]

logger = logging.getLogger(__name__)


def as_bool(value: object, name: str) -> bool:
    """
    A switch as given in a config or on the command line (``--freeze_encoder false`` reaches the config as the
    string ``'false'``): MONAI's ``str2bool`` words (true/false, yes/no, t/f, y/n, 1/0, any case) and the integers
    1 / 0; anything else is an error naming the switch.

    .. code-block:: python

        as_bool("False", "augment")  # False
    """
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        value = str(value)
    try:
        return str2bool(value.strip() if isinstance(value, str) else value)
    except (ValueError, AttributeError):
        raise ValueError(f"'{name}' must be true or false (or 1 / 0), got {value!r}.") from None


def run_bundle(bundle_root: str | Path, configs: Sequence[str], **override) -> None:
    """
    ``python -m monai.bundle run`` from Python: the bundle's ``configs/<name>`` files in order (later ones override
    earlier ones), its ``logging.conf``, ``bundle_root`` set, ``override`` applied (``None`` values are dropped by
    MONAI: pass ``""`` for "none").

    .. code-block:: python

        run_bundle("bundles/tatl", ["common.json", "train_lesion.json"], max_epochs=1)
    """
    root = Path(bundle_root)
    logger.info("running %s with %s", list(configs), override)
    monai.bundle.run(
        config_file=[str(root / "configs" / name) for name in configs],
        logging_file=str(root / "configs" / "logging.conf"),
        bundle_root=str(root),
        **override,
    )
