"""TATL (Nguyen et al., Medical Image Analysis 2022): the cascade network, datalists, workflow and reports that the
``bundles/tatl`` configs call, and the paper's experiments as plans on the library stage runner."""

from monai_skinattr.data.prepare import image_datalist

from .data import (
    LESION_SOURCES,
    attributes_of,
    check_lesion_source,
    prepare_dataset,
    segment_net_datalists,
    split_datalists,
    task1_photos,
)
from .experiments import (
    EXPERIMENTS,
    curves_table,
    experiment_plan,
    experiment_table,
    experiment_variants,
    grid_offset,
    pretext_scores,
    read_loss_curves,
)
from .models import (
    DEFAULT_SETTINGS,
    assemble_cascade,
    cascade_settings,
    check_attribute,
    network_settings,
    stage_checkpoints,
    trained_photo_size,
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
    "network_settings",
    "trained_photo_size",
    "check_attribute",
    "check_offset",
    "check_settings",
    "curves_table",
    "experiment_plan",
    "experiment_table",
    "experiment_variants",
    "read_loss_curves",
    "grid_offset",
    "image_datalist",
    "optimize_cascade",
    "lesion_crop",
    "load_transforms",
    "pending_images",
    "prepare_dataset",
    "pretext_scores",
    "round_runs",
    "run_label",
    "score_cascade",
    "split_datalists",
    "segment_net_datalists",
    "task1_photos",
    "LESION_SOURCES",
    "check_lesion_source",
    "stage_checkpoints",
    "stability_figure",
    "summary_table",
    "with_lesions",
    "write_report",
]
