"""TATL (Nguyen et al., Medical Image Analysis 2022): the cascade network, datalists, workflow and reports that the
``bundles/tatl`` configs call."""

from monai_skinattr.data.prepare import image_datalist

from .data import as_bool, attributes_of, prepare_dataset, split_datalists
from .experiments import EXPERIMENTS, plan_experiment, pretext_scores, run_experiment
from .models import (
    DEFAULT_SETTINGS,
    assemble_cascade,
    cascade_settings,
    check_attribute,
    prepare_network,
    stage_checkpoints,
)
from .networks import ARCHS, TATLCascadeNet, TATLSegmenter, lesion_boxes, optimize_cascade
from .report import attribute_table, score_cascade, summary_table, write_report
from .stability import stability_figure
from .transforms import SaveCascadeMasksd, cascade_outputs, load_transforms, pending_images, with_lesions
from .workflow import TATLWorkflow, run_label

__all__ = [
    "ARCHS",
    "EXPERIMENTS",
    "DEFAULT_SETTINGS",
    "SaveCascadeMasksd",
    "TATLCascadeNet",
    "TATLSegmenter",
    "TATLWorkflow",
    "as_bool",
    "assemble_cascade",
    "attribute_table",
    "attributes_of",
    "cascade_outputs",
    "cascade_settings",
    "check_attribute",
    "image_datalist",
    "lesion_boxes",
    "optimize_cascade",
    "load_transforms",
    "pending_images",
    "plan_experiment",
    "prepare_dataset",
    "prepare_network",
    "pretext_scores",
    "run_experiment",
    "run_label",
    "score_cascade",
    "split_datalists",
    "stage_checkpoints",
    "stability_figure",
    "summary_table",
    "with_lesions",
    "write_report",
]
