"""Deep input transfer (Taghanaki et al., MICCAI 2019): gradient perturbation of a trained segmenter's inputs, the
translator that learns it, and the paper's Table 1, as the ``bundles/input_transfer`` configs use them."""

from .data import DATASETS, prepare_splits
from .dataset import SUMMARY, perturb_dataset, perturbed_datalist, target_loading
from .evaluation import ORACLE, ORIG, mean_and_standard_error, segmentation_rates, table1
from .models import VARIANTS, assemble_model, load_network, translator_checkpoint
from .networks import TranslateThenSegment
from .perturbation import Perturbation, gradient_perturbation, gradient_step, label_mismatch
from .workflow import pipeline_plan

__all__ = [
    "pipeline_plan",
    "DATASETS",
    "VARIANTS",
    "assemble_model",
    "load_network",
    "prepare_splits",
    "translator_checkpoint",
    "ORACLE",
    "ORIG",
    "SUMMARY",
    "Perturbation",
    "TranslateThenSegment",
    "gradient_perturbation",
    "gradient_step",
    "label_mismatch",
    "mean_and_standard_error",
    "perturb_dataset",
    "perturbed_datalist",
    "segmentation_rates",
    "table1",
    "target_loading",
]
