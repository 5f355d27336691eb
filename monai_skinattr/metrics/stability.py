"""Curvature of a model's loss (Hessian spectral norms by power iteration) and TATL's stability bound."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from tqdm import tqdm

__all__ = ["hessian_spectral_norm", "per_sample_hessian_norms", "stability_bound", "stability_bound_terms"]


def _split(batch, image_key: str, label_key: str):
    if isinstance(batch, dict):
        return batch[image_key], batch[label_key]
    return batch[0], batch[1]


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters.")
    return params


def _power_iteration(
    hvp: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    params: Sequence[torch.Tensor],
    iters: int,
    tol: float,
    seed: int,
    progress: bool = False,
) -> float:
    """
    Largest absolute eigenvalue of the symmetric operator ``hvp`` (a Hessian-vector product over tensors shaped
    like ``params``) by power iteration from a seeded random start; ``iters`` iterations at most, stopping early
    when the Rayleigh quotient changes by less than ``tol`` (relative). Returns 0 for a zero operator.
    """
    device = params[0].device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen).to(device=device, dtype=p.dtype) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    estimate = 0.0
    for _ in tqdm(range(iters), desc="Hessian power iteration", disable=not progress):
        hv = hvp(v)
        new = float(sum((h * u).sum() for h, u in zip(hv, v, strict=True)))
        norm = torch.sqrt(sum((h * h).sum() for h in hv))
        if norm == 0:
            return 0.0
        v = [h / norm for h in hv]
        converged = abs(abs(new) - abs(estimate)) <= tol * max(abs(new), 1e-12)
        estimate = new
        if converged:
            break
    return abs(estimate)


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
    params = _trainable(model)
    device = params[0].device

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
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
        return [h / n_batches for h in hv]

    was_training = model.training
    model.eval()
    try:
        return _power_iteration(hvp, params, iters, tol, seed, progress)
    finally:
        model.train(was_training)


def _samples(loader: Iterable, image_key: str, label_key: str):
    """Yield ``(x_i, y_i)`` with a batch dimension of one for every sample of every batch."""
    for batch in loader:
        x, y = _split(batch, image_key, label_key)
        if len(x) != len(y):
            raise ValueError(f"a batch has {len(x)} images but {len(y)} labels.")
        for i in range(len(x)):
            yield x[i : i + 1], y[i : i + 1]


def _graph_hvp(
    grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]
) -> Callable[[list[torch.Tensor]], list[torch.Tensor]]:
    """Hessian-vector product that reuses the graph of ``grads`` (taken with ``create_graph=True``)."""
    live = [j for j, g in enumerate(grads) if g is not None and g.requires_grad]

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [torch.zeros_like(p) for p in params]
        if not live:  # the gradient does not depend on the parameters: zero Hessian
            return out
        dot = sum((grads[j] * v[j]).sum() for j in live)
        hs = torch.autograd.grad(dot, [params[j] for j in live], retain_graph=True, allow_unused=True)
        for j, h in zip(live, hs, strict=True):
            if h is not None:
                out[j] = h.detach()
        return out

    return hvp


def per_sample_hessian_norms(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: Iterable,
    iters: int = 20,
    tol: float = 1e-4,
    seed: int = 0,
    image_key: str = "image",
    label_key: str = "label",
    progress: bool = False,
) -> tuple[list[float], list[float]]:
    """
    For every single sample ``z_i`` of every batch of ``loader`` (batches are split into samples), the spectral
    norm ``||∇²ℓ(w, z_i)||₂`` of that sample's loss Hessian with respect to the trainable parameters, and the
    sample's loss ``ℓ(w, z_i)`` -- the ingredients of TATL's Eq. 8 (Nguyen et al., §4.5). Power iteration on
    exact Hessian-vector products as in :py:func:`hessian_spectral_norm`, one run per sample.

    .. code-block:: python

        from monai_skinattr.metrics import per_sample_hessian_norms

        norms, losses = per_sample_hessian_norms(net, TverskyJaccardLoss(), train_loader, iters=10)

    Args:
        model: the network (put in eval mode for the computation, restored after).
        loss_fn: ``loss_fn(model(x_i), y_i)`` on one sample kept in a batch of one.
        loader: batches as ``(x, y)`` or dicts with ``image_key`` / ``label_key``.
        iters: maximum power iterations per sample.
        tol: relative change of the estimate that stops early.
        seed: seed of the random start vector; sample ``i`` (counted over the whole loader) uses ``seed + i``.
        progress: show a progress bar over samples.

    Returns:
        ``(hessian_norms, losses)``, one entry per sample in loader order.
    """
    params = _trainable(model)
    device = params[0].device
    norms: list[float] = []
    losses: list[float] = []
    was_training = model.training
    model.eval()
    try:
        for i, (x, y) in enumerate(tqdm(_samples(loader, image_key, label_key), desc="samples", disable=not progress)):
            loss = loss_fn(model(x.to(device)), y.to(device))
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            norms.append(_power_iteration(_graph_hvp(grads, params), params, iters, tol, seed + i))
            losses.append(float(loss.detach()))
    finally:
        model.train(was_training)
    if not norms:
        raise ValueError("the loader yielded no samples.")
    return norms, losses


def stability_bound_terms(
    losses: Sequence[float], hessian_norms: Sequence[float], c: float = 0.01, num_hypotheses: int = 4
) -> dict[str, float]:
    """
    Right-hand side of TATL's Proposition 1 (Eq. 6-8, Nguyen et al., §4.5; after Kuzborskij & Lampert 2018) for one
    initialisation ``w`` from per-sample losses and Hessian spectral norms, without the ``O(·)`` constant:

    .. code-block:: text

        bound = (1 + 1/(c·γ⁻)) · R̂^(c·γ⁺ / (1 + c·γ⁺)) · sqrt(log|K|) / m^(1 / (1 + c·γ⁺))          (Eq. 6)
        γ± = γ̂ ± m^(-1/4)                                                                       (Eq. 7)
        γ̂ = (1/m) Σ_i ||∇²ℓ(w, z_i)||₂ + sqrt(R̂),   R̂ = (1/m) Σ_i ℓ(w, z_i)                      (Eq. 8)

    §5.8 uses ``c = 0.01`` and ``|K| = 4``. The proposition assumes ``ℓ ∈ [0, 1]``; that is not enforced.

    .. code-block:: python

        from monai_skinattr.metrics import per_sample_hessian_norms, stability_bound_terms

        norms, losses = per_sample_hessian_norms(net, loss, train_loader)
        terms = stability_bound_terms(losses, norms)  # terms["bound"] * 100 is Figure 7's scale

    Args:
        losses: ``ℓ(w, z_i)`` per sample, non-negative.
        hessian_norms: ``||∇²ℓ(w, z_i)||₂`` per sample, non-negative, same length.
        c: step-size constant of SGD's ``α_t = c / t``, positive.
        num_hypotheses: ``|K|``, the number of candidate initialisations, at least 2.

    Returns:
        dict with ``bound``, ``risk`` (R̂), ``gamma_hat``, ``gamma_plus``, ``gamma_minus`` and ``m``.

    Raises:
        ValueError: on empty or mismatched inputs, a negative loss or norm, ``c <= 0``, ``num_hypotheses < 2``,
            and when ``γ⁻ = γ̂ - m^(-1/4) <= 0``: the factor ``1 + 1/(c·γ⁻)`` is then undefined (the bound only
            holds for ``γ̂ > m^(-1/4)``; more samples lower ``m^(-1/4)``).
    """
    losses = [float(v) for v in losses]
    hessian_norms = [float(v) for v in hessian_norms]
    m = len(losses)
    if m == 0:
        raise ValueError("no samples: losses is empty.")
    if len(hessian_norms) != m:
        raise ValueError(f"got {m} losses but {len(hessian_norms)} Hessian norms; need one of each per sample.")
    if any(not math.isfinite(v) or v < 0 for v in losses):
        raise ValueError("losses must be finite and non-negative.")
    if any(not math.isfinite(v) or v < 0 for v in hessian_norms):
        raise ValueError("Hessian spectral norms must be finite and non-negative.")
    if not c > 0:
        raise ValueError(f"c must be positive, got {c}.")
    if num_hypotheses < 2:
        raise ValueError(f"num_hypotheses (|K|) must be at least 2 so that log|K| > 0, got {num_hypotheses}.")
    risk = sum(losses) / m
    gamma_hat = sum(hessian_norms) / m + math.sqrt(risk)
    delta = m**-0.25
    gamma_plus, gamma_minus = gamma_hat + delta, gamma_hat - delta
    if gamma_minus <= 0:
        raise ValueError(
            f"γ⁻ = γ̂ - m^(-1/4) = {gamma_hat:.6g} - {delta:.6g} = {gamma_minus:.6g} <= 0 with m = {m}: the factor "
            "1 + 1/(c·γ⁻) of Eq. 6 is undefined (needs γ̂ > m^(-1/4); use more samples)."
        )
    cg = c * gamma_plus
    bound = (
        (1 + 1 / (c * gamma_minus))
        * risk ** (cg / (1 + cg))
        * math.sqrt(math.log(num_hypotheses))
        / m ** (1 / (1 + cg))
    )
    return {
        "bound": bound,
        "risk": risk,
        "gamma_hat": gamma_hat,
        "gamma_plus": gamma_plus,
        "gamma_minus": gamma_minus,
        "m": m,
    }


def stability_bound(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: Iterable,
    c: float = 0.01,
    num_hypotheses: int = 4,
    iters: int = 20,
    tol: float = 1e-4,
    seed: int = 0,
    image_key: str = "image",
    label_key: str = "label",
    progress: bool = False,
) -> dict[str, float]:
    """
    TATL's Proposition 1 bound (Eq. 6-8) for the initialisation ``model`` on the samples of ``loader``:
    :py:func:`per_sample_hessian_norms` followed by :py:func:`stability_bound_terms` (see there for the formula,
    the returned keys and the errors). Lower is better; §5.8 / Figure 7 report ``bound * 100``.

    .. code-block:: python

        from monai_skinattr.metrics import stability_bound

        out = stability_bound(net, TverskyJaccardLoss(), attribute_train_loader, c=0.01, num_hypotheses=4)
        print(out["bound"] * 100, out["risk"], out["gamma_hat"])

    Args:
        model: the initialisation, before any training on the target attribute (eval mode during, restored after).
        loss_fn: ``loss_fn(model(x_i), y_i)`` on one sample kept in a batch of one.
        loader: batches as ``(x, y)`` or dicts with ``image_key`` / ``label_key``; every sample counts toward ``m``.
        c: step-size constant, positive.
        num_hypotheses: ``|K|``, at least 2.
        iters: maximum power iterations per sample.
        tol: relative change that stops a sample's power iteration early.
        seed: seed of the random start vectors.
        progress: show a progress bar over samples.
    """
    norms, losses = per_sample_hessian_norms(
        model,
        loss_fn,
        loader,
        iters=iters,
        tol=tol,
        seed=seed,
        image_key=image_key,
        label_key=label_key,
        progress=progress,
    )
    return stability_bound_terms(losses, norms, c=c, num_hypotheses=num_hypotheses)
