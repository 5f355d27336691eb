"""Loss of the deep-input-transfer translation network: (1 - SSIM) + lambda * L1."""

from __future__ import annotations

import torch
from monai.losses import SSIMLoss
from torch import nn

__all__ = ["SSIML1Loss"]


class SSIML1Loss(nn.Module):
    """
    ``(1 - SSIM(input, target)) + lambda_l1 * mean|input - target|``, with MONAI's ``SSIMLoss`` (which returns
    ``1 - SSIM``). Inputs are images in ``[0, data_range]``.

    .. code-block:: python

        import torch
        from monai_skinattr.losses import SSIML1Loss

        x = torch.rand(2, 3, 32, 32)
        print(SSIML1Loss(lambda_l1=1.0)(x, x))  # tensor(0.)

    Args:
        lambda_l1: weight of the L1 term.
        spatial_dims: 2 or 3.
        data_range: intensity range of the images.
        win_size: SSIM window size.
    """

    def __init__(self, lambda_l1: float = 1.0, spatial_dims: int = 2, data_range: float = 1.0, win_size: int = 7):
        super().__init__()
        self.ssim = SSIMLoss(spatial_dims=spatial_dims, data_range=data_range, win_size=win_size)
        self.lambda_l1 = lambda_l1

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.ssim(input, target) + self.lambda_l1 * torch.mean(torch.abs(input - target))
