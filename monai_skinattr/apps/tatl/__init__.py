"""TATL (Nguyen et al., Medical Image Analysis 2022): the cascade network, datalists, workflow and reports that the
``bundles/tatl`` configs call, and the paper's experiments as plans on the library stage runner."""

from monai_skinattr.data.prepare import image_datalist

from .data import attributes_of, prepare_dataset, split_datalists
from .experiments import (
    EXPERIMENTS,
    experiment_plan,
    experiment_table,
    experiment_variants,
    grid_offset,
    pretext_scores,
)
from .models import (
    DEFAULT_SETTINGS,
    assemble_cascade,
    cascade_settings,
    check_attribute,
    stage_checkpoints,
)
from .networks import ARCHS, TATLCascadeNet, TATLSegmenter, optimize_cascade
from .report import attribute_table, score_cascade, summary_table, write_report
from .rounds import round_runs, run_label
from .settings import check_offset, check_settings
from .stability import stability_figure
from .transforms import (
    SaveCascadeMasksd,
    cascade_outputs,
    lesion_crop,
    load_transforms,
    pending_images,
    photo_transforms,
    with_lesions,
)

__all__ = [
    "ARCHS",
    "EXPERIMENTS",
    "DEFAULT_SETTINGS",
    "SaveCascadeMasksd",
    "TATLCascadeNet",
    "TATLSegmenter",
    "assemble_cascade",
    "attribute_table",
    "attributes_of",
    "cascade_outputs",
    "cascade_settings",
    "check_attribute",
    "check_offset",
    "check_settings",
    "experiment_plan",
    "experiment_table",
    "experiment_variants",
    "grid_offset",
    "image_datalist",
    "optimize_cascade",
    "lesion_crop",
    "load_transforms",
    "pending_images",
    "photo_transforms",
    "prepare_dataset",
    "pretext_scores",
    "round_runs",
    "run_label",
    "score_cascade",
    "split_datalists",
    "stage_checkpoints",
    "stability_figure",
    "summary_table",
    "with_lesions",
    "write_report",
]
