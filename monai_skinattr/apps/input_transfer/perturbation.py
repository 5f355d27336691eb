"""Gradient perturbation (Taghanaki et al. 2019, Eq. 3-6): move an image until a trained segmenter gets it right."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["Perturbation", "gradient_perturbation", "gradient_step", "label_mismatch"]


class Perturbation(NamedTuple):
    """What :func:`gradient_perturbation` returns: the perturbed images ``I + Δ`` and the steps each one took."""

    images: torch.Tensor
    iterations: torch.Tensor


def label_mismatch(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, the fraction of pixels whose arg-max class differs from ``labels`` (``(B, 1, ...)`` indices)."""
    return (logits.argmax(dim=1, keepdim=True) != labels.long()).flatten(1).float().mean(dim=1)


def gradient_step(
    network: nn.Module, images: torch.Tensor, labels: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    One step of the paper's perturbation (Eq. 3–6) for a batch: ``I − γ·δ/||δ||_∞`` per image with ``δ = ∇_I G``,
    ``G`` = the sum over pixels of (logit of the predicted class − logit of the true class), and the logits of
    ``I``. An image whose prediction is already right everywhere has ``δ = 0`` and does not move.

    .. code-block:: python

        stepped, logits = gradient_step(net.eval(), images, labels, gamma=0.1)  # |stepped - images|.max() == 0.1
    """
    x = images.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = network(x)
        if logits.shape[1] < 2:
            raise ValueError(f"the network must return logits of at least 2 classes, got {logits.shape[1]}.")
        if logits.shape[2:] != labels.shape[2:]:
            raise ValueError(f"network output {tuple(logits.shape)} does not match labels {tuple(labels.shape)}")
        predicted = logits.argmax(dim=1, keepdim=True)
        g = logits.gather(1, predicted) - logits.gather(1, labels.long())
        (delta,) = torch.autograd.grad(g.sum(), x)
    norm = delta.flatten(1).abs().amax(dim=1).clamp_min(torch.finfo(delta.dtype).tiny)
    return (x - gamma * delta / norm.view(-1, *[1] * (delta.ndim - 1))).detach(), logits.detach()


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
    ``tolerance`` of its pixels disagree with ``labels``, or after ``iterations`` steps. An image that never gets
    there (a large γ can overshoot and oscillate around the boundary) gets the iterate with the fewest wrong pixels
    (the earliest of equals) rather than the K-th, so a perturbed image is never segmented worse than the original.
    The network is used in eval mode and not changed; the images are not clipped (they leave ``[0, 1]``).

    .. code-block:: python

        import torch
        from monai_skinattr.apps.input_transfer import gradient_perturbation
        from monai_skinattr.networks import UNet

        net = UNet(in_channels=3, out_channels=2, features=(4, 8, 16, 32, 64)).eval()
        images, labels = torch.rand(2, 3, 32, 32), torch.randint(0, 2, (2, 1, 32, 32))
        out = gradient_perturbation(net, images, labels, gamma=1.0, iterations=5)
        print(out.images.shape, out.iterations)  # torch.Size([2, 3, 32, 32]) and the steps each image took

    Args:
        network: a trained segmenter returning ``(B, C, ...)`` class logits (softmax over ``C >= 2`` classes).
        images: ``(B, channels, ...)`` inputs of ``network``.
        labels: ``(B, 1, ...)`` true class indices.
        gamma: step size γ (1.0 for GP_Ts, 0.1 for GP_T in the paper).
        iterations: the most steps K.
        tolerance: fraction of wrong pixels at which an image counts as segmented correctly.

    Returns:
        ``Perturbation(images, iterations)``: ``I + Δ`` (same dtype and device as ``images``) and the steps that
        led to it per image (``0`` for an image the network already segments within ``tolerance``).
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
    best, best_steps = perturbed.clone(), torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
    best_wrong = torch.full((images.shape[0],), float("inf"), device=images.device)
    steps = torch.zeros_like(best_steps)
    active = torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
    shape = (-1, *[1] * (images.ndim - 1))
    try:
        for k in range(iterations + 1):
            stepped, logits = gradient_step(network, perturbed, labels, gamma)
            wrong = label_mismatch(logits, labels)
            better = active & (wrong < best_wrong)
            best = torch.where(better.view(shape), perturbed, best)
            best_steps = torch.where(better, steps, best_steps)
            best_wrong = torch.where(better, wrong, best_wrong)
            active &= wrong > tolerance
            if not active.any() or k == iterations:
                break
            perturbed = torch.where(active.view(shape), stepped, perturbed)
            steps += active.long()
    finally:
        network.train(was_training)
    return Perturbation(best, best_steps)
