"""The MobileNetV2-encoder U-Net for ISIC 2016 lesions: three fine-tuning phases (frozen, stage 4 open, all open) and
their table, as the ``bundles/mobilenet_unet`` configs use them."""

from .phases import PHASES, phase_table, prepare_network, run_phases

__all__ = ["PHASES", "phase_table", "prepare_network", "run_phases"]
