"""Gradient perturbation (Taghanaki et al. 2019, Eq. 3-6): move an image until a trained segmenter gets it right."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["Perturbation", "gradient_perturbation", "label_mismatch"]


class Perturbation(NamedTuple):
    """What :func:`gradient_perturbation` returns: the perturbed images ``I + Δ`` and the steps each one took."""

    images: torch.Tensor
    iterations: torch.Tensor


def label_mismatch(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, the fraction of pixels whose arg-max class differs from ``labels`` (``(B, 1, ...)`` indices)."""
    return (logits.argmax(dim=1, keepdim=True) != labels.long()).flatten(1).float().mean(dim=1)


def gradient_perturbation(
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    gamma: float = 1.0,
    iterations: int = 100,
    tolerance: float = 0.0,
) -> Perturbation:
    """
    The paper's gradient perturbation, batched: for each image, ``G`` = the sum over pixels of the logit of the
    predicted class minus the logit of the true class (Eq. 3), ``δ = ∇_I G`` (Eq. 5), ``δ' = δ / ||δ||_∞`` per
    image (Eq. 6) and the step ``I ← I − γ·δ'``: gradient *descent* on ``G``, which lowers the wrong logits and
    raises the right ones (the paper's text and Figure 1; Eq. 4 prints "+"). An image stops as soon as at most
    ``tolerance`` of its pixels disagree with ``labels``, or after ``iterations`` steps. The network is used in
    eval mode and not changed; the images are not clipped (they leave ``[0, 1]``).

    .. code-block:: python

        import torch
        from monai_skinattr.apps.input_transfer import gradient_perturbation
        from monai_skinattr.networks import UNet

        net = UNet(in_channels=3, out_channels=2, features=(4, 8, 16, 32, 64)).eval()
        images, labels = torch.rand(2, 3, 32, 32), torch.randint(0, 2, (2, 1, 32, 32))
        out = gradient_perturbation(net, images, labels, gamma=1.0, iterations=5)
        print(out.images.shape, out.iterations)  # torch.Size([2, 3, 32, 32]) tensor([5, 5])

    Args:
        network: a trained segmenter returning ``(B, C, ...)`` class logits (softmax over ``C >= 2`` classes).
        images: ``(B, channels, ...)`` inputs of ``network``.
        labels: ``(B, 1, ...)`` true class indices.
        gamma: step size γ (1.0 for GP_Ts, 0.1 for GP_T in the paper).
        iterations: the most steps K.
        tolerance: fraction of wrong pixels at which an image counts as segmented correctly.

    Returns:
        ``Perturbation(images, iterations)``: ``I + Δ`` (same dtype and device as ``images``) and the steps taken
        per image (``0`` for an image the network already segments within ``tolerance``).
    """
    if images.ndim < 3 or labels.shape != (images.shape[0], 1, *images.shape[2:]):
        raise ValueError(
            f"labels must be (B, 1, ...) class indices matching images (B, C, ...): got images {tuple(images.shape)}"
            f" and labels {tuple(labels.shape)}."
        )
    if gamma <= 0 or iterations < 0 or not 0.0 <= tolerance < 1.0:
        raise ValueError(
            f"need gamma > 0, iterations >= 0 and tolerance in [0, 1), got {gamma}, {iterations}, {tolerance}."
        )
    if not torch.isfinite(images).all():
        raise ValueError("images hold NaN or infinite values.")
    was_training = network.training
    network.eval()
    labels = labels.long()
    perturbed = images.detach().clone()
    steps = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
    active = torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
    try:
        for _ in range(iterations + 1):
            x = perturbed.requires_grad_(True)
            with torch.enable_grad():
                logits = network(x)
                if logits.shape[1] < 2:
                    raise ValueError(f"the network must return logits of at least 2 classes, got {logits.shape[1]}.")
                if logits.shape[2:] != labels.shape[2:]:
                    raise ValueError(
                        f"network output {tuple(logits.shape)} does not match labels {tuple(labels.shape)}."
                    )
                active &= label_mismatch(logits.detach(), labels) > tolerance
                if not active.any() or bool((steps >= iterations).all()):
                    break
                predicted = logits.argmax(dim=1, keepdim=True)
                g = logits.gather(1, predicted) - logits.gather(1, labels)
                (delta,) = torch.autograd.grad(g.sum(), x)
            norm = delta.flatten(1).abs().amax(dim=1).clamp_min(torch.finfo(delta.dtype).tiny)
            step = gamma * delta / norm.view(-1, *[1] * (delta.ndim - 1))
            perturbed = (x.detach() - step * active.view(-1, *[1] * (delta.ndim - 1))).detach()
            steps += active.long()
    finally:
        network.train(was_training)
    return Perturbation(perturbed.detach(), steps)
