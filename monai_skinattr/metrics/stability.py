"""Curvature of a trained model's loss: the Hessian spectral norm by power iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

__all__ = ["hessian_spectral_norm"]


def _split(batch, image_key: str, label_key: str):
    if isinstance(batch, dict):
        return batch[image_key], batch[label_key]
    return batch[0], batch[1]


def hessian_spectral_norm(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: Iterable,
    iters: int = 20,
    tol: float = 1e-4,
    seed: int = 0,
    image_key: str = "image",
    label_key: str = "label",
    progress: bool = False,
) -> float:
    """
    Largest absolute eigenvalue of the Hessian of the mean loss over ``loader`` with respect to the trainable
    parameters, by power iteration on exact Hessian-vector products (double back-propagation). Stops after
    ``iters`` iterations or when the estimate changes by less than ``tol`` (relative).

    .. code-block:: python

        from monai_skinattr.metrics import hessian_spectral_norm

        gamma = hessian_spectral_norm(net, TverskyJaccardLoss(), val_loader, iters=10)

    Args:
        model: the network (put in eval mode for the computation, restored after).
        loss_fn: ``loss_fn(model(x), y)``.
        loader: batches as ``(x, y)`` or dicts with ``image_key`` / ``label_key``; held in memory is not needed.
        iters: maximum power iterations (each is one pass over ``loader``).
        tol: relative change of the estimate that stops early.
        seed: seed of the random start vector.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters.")
    device = params[0].device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen).to(device) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    was_training = model.training
    model.eval()
    estimate = 0.0
    try:
        for _ in tqdm(range(iters), desc="Hessian power iteration", disable=not progress):
            hv = [torch.zeros_like(p) for p in params]
            n_batches = 0
            for batch in loader:
                x, y = _split(batch, image_key, label_key)
                loss = loss_fn(model(x.to(device)), y.to(device))
                grads = torch.autograd.grad(loss, params, create_graph=True)
                dot = sum((g * u).sum() for g, u in zip(grads, v, strict=True))
                for acc, h in zip(hv, torch.autograd.grad(dot, params), strict=True):
                    acc += h.detach()
                n_batches += 1
            if n_batches == 0:
                raise ValueError("the loader yielded no batches.")
            hv = [h / n_batches for h in hv]
            new = float(sum((h * u).sum() for h, u in zip(hv, v, strict=True)))
            norm = torch.sqrt(sum((h * h).sum() for h in hv))
            if norm == 0:
                return 0.0
            v = [h / norm for h in hv]
            converged = abs(abs(new) - abs(estimate)) <= tol * max(abs(new), 1e-12)
            estimate = new
            if converged:
                break
    finally:
        model.train(was_training)
    return abs(estimate)
