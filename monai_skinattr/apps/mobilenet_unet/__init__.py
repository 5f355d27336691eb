"""The MobileNetV2-encoder U-Net for ISIC 2016 lesions: three fine-tuning phases (frozen, stage 4 open, all open) as a
plan on the library's stage runner, and their table, as the ``bundles/mobilenet_unet`` configs use them."""

from .phases import PHASES, phase_table, phases_plan

__all__ = ["PHASES", "phase_table", "phases_plan"]
