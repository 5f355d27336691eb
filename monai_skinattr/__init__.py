"""
monai_skinattr: a MONAI add-on for skin-lesion attribute detection and related medical segmentation methods.

The subpackages load on first use (``monai_skinattr.transforms``, ``from monai_skinattr.networks import ...``), so a
command that needs none of them, such as ``python -m monai_skinattr.bundles init``, does not wait for PyTorch.
"""

import importlib

__version__ = "0.1.0"
__all__ = [
    "bundles",
    "config",
    "data",
    "handlers",
    "losses",
    "metrics",
    "networks",
    "runner",
    "transforms",
    "utils",
    "visualize",
]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'monai_skinattr' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
