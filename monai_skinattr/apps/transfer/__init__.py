"""The pretraining-length and robustness-transferability study (ELTE MSc thesis 2024) as ``bundles/transfer`` uses it:
encoder pretraining (:mod:`.pretraining`), downstream segmentation on ACDC, COVID-QU-Ex and IDRiD (:mod:`.downstream`),
the robustness of pretrained encoders (:mod:`.robustness`) and the study that ties them together (:mod:`.study`)."""

from .downstream import (
    DATASETS,
    MODES,
    ClassChannel,
    HD95Metric,
    PooledDiceMetric,
    ValidationLog,
    augmentation,
    downstream_splits,
    eval_postprocessing,
    expand,
    inference_datalist,
    inference_postprocessing,
    inferer,
    metric_handlers,
    prepare_network,
    preprocessing,
)
from .pretraining import EncoderCheckpoints, MixUpCutMix, checkpoint_path, pretraining_transforms, read_robustness
from .robustness import encoder_score, robustness_images, score_encoders, target_score
from .study import Study

__all__ = [
    "EncoderCheckpoints",
    "MixUpCutMix",
    "Study",
    "checkpoint_path",
    "encoder_score",
    "pretraining_transforms",
    "read_robustness",
    "robustness_images",
    "score_encoders",
    "target_score",
    "DATASETS",
    "MODES",
    "ClassChannel",
    "HD95Metric",
    "PooledDiceMetric",
    "ValidationLog",
    "augmentation",
    "downstream_splits",
    "eval_postprocessing",
    "expand",
    "inference_datalist",
    "inference_postprocessing",
    "inferer",
    "metric_handlers",
    "prepare_network",
    "preprocessing",
]
