"""Loss of the deep-input-transfer translation network: (1 - SSIM) + lambda * L1."""

from __future__ import annotations

import torch
from monai.metrics.regression import compute_ssim_and_cs
from monai.utils import ensure_tuple_rep
from torch import nn

__all__ = ["SSIML1Loss"]


class SSIML1Loss(nn.Module):
    """
    ``(1 - SSIM(input, target)) + lambda_l1 * mean|input - target|``, averaged over the batch, with SSIM computed by
    MONAI (``monai.metrics.regression.compute_ssim_and_cs``, the code behind ``monai.losses.SSIMLoss``).

    SSIM's stability constants scale with the data range of the images. The gradient-perturbed targets of deep input
    transfer leave [0, 1], so by default the range is taken from each target image, per call:
    ``target[i].max() - target[i].min()`` for sample ``i`` (a constant target uses 1.0). With that default, scaling
    both input and target by a constant leaves the SSIM term unchanged. Pass ``data_range`` to fix it instead; the
    SSIM term then equals ``monai.losses.SSIMLoss(spatial_dims, data_range, win_size=win_size)``.

    .. code-block:: python

        import torch
        from monai_skinattr.losses import SSIML1Loss

        target = torch.rand(2, 3, 32, 32) * 2.2 - 0.5  # perturbed images in [-0.5, 1.7]
        loss = SSIML1Loss(lambda_l1=1.0)
        print(loss(target, target))  # tensor(0.)
        print(loss(torch.zeros_like(target), target) > 0)  # tensor(True)

    Args:
        lambda_l1: weight of the L1 term (the paper leaves it unstated).
        spatial_dims: 2 or 3.
        data_range: intensity range of the images for SSIM; ``None`` (default) takes it from each target per call.
        win_size: SSIM (Gaussian) window size.
        kernel_sigma: standard deviation of the Gaussian window.
    """

    def __init__(
        self,
        lambda_l1: float = 1.0,
        spatial_dims: int = 2,
        data_range: float | None = None,
        win_size: int = 7,
        kernel_sigma: float = 1.5,
    ) -> None:
        super().__init__()
        if data_range is not None and data_range <= 0:
            raise ValueError(f"data_range must be positive or None (from the targets), got {data_range}.")
        self.lambda_l1 = lambda_l1
        self.spatial_dims = spatial_dims
        self.data_range = data_range
        self.kernel_size = ensure_tuple_rep(win_size, spatial_dims)
        self.kernel_sigma = ensure_tuple_rep(kernel_sigma, spatial_dims)

    def _target_range(self, target: torch.Tensor) -> torch.Tensor:
        """Per-sample ``max - min`` of ``target`` (1.0 where constant), shaped to broadcast over ``(B, C, ...)``."""
        flat = target.detach().flatten(1)
        span = flat.amax(1) - flat.amin(1)
        span = torch.where(span > 0, span, torch.ones_like(span))
        return span.view(-1, *[1] * (target.ndim - 1))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: predicted images, ``(B, C, H, W[, D])``.
            target: target images of the same shape.
        """
        data_range = self._target_range(target) if self.data_range is None else self.data_range
        ssim, _ = compute_ssim_and_cs(
            input,
            target,
            spatial_dims=self.spatial_dims,
            kernel_size=self.kernel_size,
            kernel_sigma=self.kernel_sigma,
            data_range=data_range,  # a per-sample tensor broadcasts in MONAI's stability constants
        )
        ssim_loss = 1 - ssim.flatten(1).mean(1).mean()
        return ssim_loss + self.lambda_l1 * torch.mean(torch.abs(input - target))
