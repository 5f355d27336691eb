"""Bundle helpers: command-line switches that mean what they say, and running a bundle's configs from Python."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import monai.bundle
from monai.utils import str2bool

__all__ = ["as_bool", "as_size", "as_index", "check_switches", "check_settings", "run_bundle"]

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


def check_switches(switches: Mapping[str, object]) -> None:
    """
    Every ``{name: value}`` of ``switches`` through :func:`as_bool`, so a misspelt switch is an error by name before
    any work, even one the run would only read later (or never, on this path).

    .. code-block:: python

        check_switches({"augment": "false", "crop": "maybe"})  # ValueError: 'crop' must be true or false ...
    """
    for name, value in switches.items():
        as_bool(value, name)


def as_size(value: object, name: str, dims: int = 2, multiple: int = 1) -> list[int]:
    """
    A spatial size setting as ``dims`` positive integers, each a multiple of ``multiple`` (32: the five halvings
    of an EfficientNet / ResNet encoder); anything else is an error naming ``name`` and what was given.

    .. code-block:: python

        as_size([384, 512], "spatial_size", multiple=32)  # [384, 512]
        as_size([65, 97], "spatial_size", multiple=32)  # ValueError: 'spatial_size' must be 2 positive ...
    """
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == dims
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % multiple == 0 for v in value)
    if not ok:
        each = f"multiples of {multiple}" if multiple > 1 else "integers"
        raise ValueError(f"'{name}' must be {dims} positive {each}, got {value!r}.")
    return list(value)


def as_index(value: object, name: str, count: int, count_name: str) -> int:
    """An integer setting in ``0 .. count - 1`` (``count`` is the setting ``count_name``); else an error by name."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        raise ValueError(f"'{name}' must be an integer from 0 to {count - 1} ({count_name} {count}), got {value!r}.")
    return value


def check_settings(
    spatial_size: object = None, multiple: int = 1, switches: Mapping[str, object] | None = None, dims: int = 2
) -> None:
    """
    The settings a bundle config checks first in its ``initialize``, so a value that cannot be honoured is an error
    by name before any data, model, record or event file is made: ``spatial_size`` (:func:`as_size`: ``dims``
    positive integers, multiples of ``multiple``, what the network's downsampling needs) and every switch
    (:func:`check_switches`).

    .. code-block:: python

        check_settings([224, 224], multiple=16, switches={"resume": "true"})  # fine
        check_settings([65, 97], multiple=16)  # ValueError: 'spatial_size' must be 2 positive multiples of 16 ...
    """
    if spatial_size is not None:
        as_size(spatial_size, "spatial_size", dims, multiple)
    check_switches(switches or {})


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
