"""Dataset readers (MONAI datalists from the challenges' own layouts), synthetic twins and folds.

The synthetic generators are in :mod:`monai_skinattr.data.synthetic` (``from monai_skinattr.data import synthetic``).
"""

from . import folds
from .acdc import acdc_datalist
from .checks import DatasetLayoutError
from .covidqu import covidqu_datalist
from .cvc import cvc_colondb_datalist
from .folds import carve_validation, kfold
from .idrid import idrid_datalist
from .imagefolder import imagefolder_datalist
from .isic import ATTRIBUTES, isic_datalist
from .prepare import image_datalist, lesion_splits, prepare_isic
from .shenzhen import shenzhen_datalist

__all__ = [
    "ATTRIBUTES",
    "DatasetLayoutError",
    "acdc_datalist",
    "carve_validation",
    "covidqu_datalist",
    "cvc_colondb_datalist",
    "folds",
    "idrid_datalist",
    "image_datalist",
    "imagefolder_datalist",
    "isic_datalist",
    "kfold",
    "lesion_splits",
    "prepare_isic",
    "shenzhen_datalist",
]
