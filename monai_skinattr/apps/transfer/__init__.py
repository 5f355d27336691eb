"""The pretraining-length and robustness-transferability study (ELTE MSc thesis 2024) as ``bundles/transfer`` uses it:
encoder pretraining (:mod:`.pretraining`), downstream segmentation on ACDC, COVID-QU-Ex and IDRiD (:mod:`.datasets`,
:mod:`.transforms`, :mod:`.training`, :mod:`.evaluation`, :mod:`.inference`), the robustness of pretrained encoders
(:mod:`.robustness`) and the study's plan (:mod:`.study`)."""

from .datasets import DATASETS, downstream_splits, expand
from .evaluation import ClassChannel, metric_handlers
from .inference import inference_datalist, inference_postprocessing, inferer
from .pretraining import EncoderCheckpoints, MixUpCutMix, checkpoint_path, pretraining_transforms, read_robustness
from .robustness import encoder_score, robustness_images, score_encoders, target_score
from .study import study_plan, study_tables
from .training import MODES, encoder_frozen
from .transforms import augmentation, eval_postprocessing, preprocessing

__all__ = [
    "DATASETS",
    "MODES",
    "ClassChannel",
    "EncoderCheckpoints",
    "MixUpCutMix",
    "augmentation",
    "checkpoint_path",
    "downstream_splits",
    "encoder_frozen",
    "encoder_score",
    "eval_postprocessing",
    "expand",
    "inference_datalist",
    "inference_postprocessing",
    "inferer",
    "metric_handlers",
    "preprocessing",
    "pretraining_transforms",
    "read_robustness",
    "robustness_images",
    "score_encoders",
    "study_plan",
    "study_tables",
    "target_score",
]
