"""Dataset readers (MONAI datalists from the challenges' own layouts), synthetic twins and folds.

The synthetic generators are in :mod:`monai_skinattr.data.synthetic` (``from monai_skinattr.data import synthetic``).
"""

from . import folds
from .acdc import acdc_datalist
from .checks import DatasetLayoutError
from .covidqu import covidqu_datalist
from .folds import carve_validation, kfold
from .idrid import idrid_datalist
from .isic import ATTRIBUTES, isic_datalist

__all__ = [
    "ATTRIBUTES",
    "DatasetLayoutError",
    "acdc_datalist",
    "carve_validation",
    "covidqu_datalist",
    "folds",
    "idrid_datalist",
    "isic_datalist",
    "kfold",
]
