"""Networks not in MONAI, each buildable from a bundle config and exportable to TorchScript."""

from .attention_unet import AttentionGate, ResNet50AttentionUNet
from .base import (
    EncoderDecoder,
    SkipDecoder,
    StagedEncoder,
    count_parameters,
    freeze_encoder,
    init_weights,
    load_stage_weights,
    prepare_network,
)
from .classifier import THESIS_SIZE_MULTIPLES, EncoderClassifier, thesis_network
from .efficient_former import EffFormerISCF, EfficientAttention, InterScaleContextFusion
from .efficientnet import EffLinkNet, EffUNet, LinkNetDecoder, UNetDecoder
from .encoders import (
    DenseNet169Encoder,
    EfficientNetEncoder,
    InceptionResNetV2Encoder,
    MobileNetV2Encoder,
    ResNet50Encoder,
    ResNet152Encoder,
    ResNetEncoder,
    VGG16Encoder,
    get_encoder,
    input_normalization,
    list_encoders,
    register_encoder,
)
from .ensemble import ProbabilityEnsemble
from .fc_densenet import FCDenseNet
from .inference import fold_batch_norms, optimize_for_inference, swish_to_silu
from .mobilenet_unet import MobileNetV2UNet
from .normalization import ChannelNormalization
from .swin_unet import SwinEncoder, SwinUNet
from .unet import UNet

__all__ = [
    "AttentionGate",
    "ChannelNormalization",
    "DenseNet169Encoder",
    "EffFormerISCF",
    "EffLinkNet",
    "EfficientAttention",
    "EffUNet",
    "EfficientNetEncoder",
    "EncoderClassifier",
    "THESIS_SIZE_MULTIPLES",
    "EncoderDecoder",
    "FCDenseNet",
    "InceptionResNetV2Encoder",
    "InterScaleContextFusion",
    "LinkNetDecoder",
    "MobileNetV2Encoder",
    "MobileNetV2UNet",
    "ProbabilityEnsemble",
    "ResNet50AttentionUNet",
    "ResNet50Encoder",
    "ResNet152Encoder",
    "ResNetEncoder",
    "SkipDecoder",
    "StagedEncoder",
    "SwinEncoder",
    "SwinUNet",
    "UNet",
    "UNetDecoder",
    "VGG16Encoder",
    "count_parameters",
    "fold_batch_norms",
    "freeze_encoder",
    "get_encoder",
    "input_normalization",
    "init_weights",
    "list_encoders",
    "load_stage_weights",
    "prepare_network",
    "optimize_for_inference",
    "swish_to_silu",
    "register_encoder",
    "thesis_network",
]
