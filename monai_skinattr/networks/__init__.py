"""Networks not in MONAI, each buildable from a bundle config and exportable to TorchScript."""

from .attention_unet import ResNet50AttentionUNet, ResNet50Encoder
from .base import EncoderDecoder, SkipDecoder, StagedEncoder, count_parameters, freeze_encoder, load_stage_weights
from .efficient_former import EffFormerISCF, EfficientAttention, InterScaleContextFusion
from .efficientnet import EfficientNetEncoder, EffLinkNet, EffUNet, LinkNetDecoder, UNetDecoder
from .ensemble import ProbabilityEnsemble
from .fc_densenet import FCDenseNet
from .mobilenet_unet import MobileNetV2Encoder, MobileNetV2UNet
from .swin_unet import SwinEncoder, SwinUNet
from .unet import UNet

__all__ = [
    "EffFormerISCF",
    "EffLinkNet",
    "EfficientAttention",
    "EffUNet",
    "EfficientNetEncoder",
    "EncoderDecoder",
    "FCDenseNet",
    "InterScaleContextFusion",
    "LinkNetDecoder",
    "MobileNetV2Encoder",
    "MobileNetV2UNet",
    "ProbabilityEnsemble",
    "ResNet50AttentionUNet",
    "ResNet50Encoder",
    "SkipDecoder",
    "StagedEncoder",
    "SwinEncoder",
    "SwinUNet",
    "UNet",
    "UNetDecoder",
    "count_parameters",
    "freeze_encoder",
    "load_stage_weights",
]
