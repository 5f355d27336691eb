"""Losses not in MONAI, composed from MONAI's own.

- ``BatchDiceLoss``: the pretraining-length thesis' Eq. 2.10 (squared-denominator Dice summed over the batch,
  averaged over every class including the background; a binary task as the two classes ``[1 - p, p]``). MONAI's
  ``DiceLoss(squared_pred=True, batch=True)`` on one sigmoid channel is not it: that scores the foreground only.
- ``TverskyJaccardLoss``: TATL Eq. 1-3.
- ``SSIML1Loss``: ``1 - SSIM + λ·L1`` (deep input transfer).

Where MONAI already has the loss a method needs, use it directly:

- Dice + BCE (MobileNetV2 U-Net method): ``monai.losses.DiceCELoss(sigmoid=True)`` (BCE with logits for one channel);
- BCE (efficient-attention ISCF method): ``torch.nn.BCEWithLogitsLoss``.
"""

from .batch_dice import BatchDiceLoss
from .ssim_l1 import SSIML1Loss
from .tversky_jaccard import TverskyJaccardLoss

__all__ = ["BatchDiceLoss", "SSIML1Loss", "TverskyJaccardLoss"]
