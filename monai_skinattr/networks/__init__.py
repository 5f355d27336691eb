"""Networks not in MONAI, each buildable from a bundle config and exportable to TorchScript."""

from .base import EncoderDecoder, count_parameters, freeze_encoder, load_stage_weights
from .efficientnet import EfficientNetEncoder, EffLinkNet, EffUNet, LinkNetDecoder, UNetDecoder
from .ensemble import ProbabilityEnsemble

__all__ = [
    "EffLinkNet",
    "EffUNet",
    "EfficientNetEncoder",
    "EncoderDecoder",
    "LinkNetDecoder",
    "ProbabilityEnsemble",
    "UNetDecoder",
    "count_parameters",
    "freeze_encoder",
    "load_stage_weights",
]
