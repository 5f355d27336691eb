"""Losses not in MONAI, composed from MONAI's own.

Where MONAI already has the loss a method needs, use it directly:

- squared-denominator batch Dice (thesis Eq. 1.10 / 2.10): ``monai.losses.DiceLoss(squared_pred=True, batch=True)``;
- Dice + BCE (MobileNetV2 U-Net method): ``monai.losses.DiceCELoss(sigmoid=True)`` (BCE with logits for one channel);
- BCE (efficient-attention ISCF method): ``torch.nn.BCEWithLogitsLoss``.
"""

from .ssim_l1 import SSIML1Loss
from .tversky_jaccard import TverskyJaccardLoss

__all__ = ["SSIML1Loss", "TverskyJaccardLoss"]
