"""Hand the network plain tensors: MONAI's default batch preparation without MetaTensor bookkeeping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import PrepareBatch, default_prepare_batch

__all__ = ["PrepareBatchPlain", "plain_tensors"]


def plain_tensors(data: Any) -> Any:
    """``data`` with every :class:`~monai.data.MetaTensor` (alone, or a value of a mapping or sequence) turned into a
    plain ``torch.Tensor`` view of the same memory (no copy); anything else is returned unchanged."""
    if isinstance(data, MetaTensor):
        return data.as_tensor()
    if isinstance(data, Mapping):
        return {k: plain_tensors(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(plain_tensors(v) for v in data)
    return data


class PrepareBatchPlain(PrepareBatch):
    """
    MONAI's ``default_prepare_batch`` (``image`` and ``label`` of a dict batch, or a tensor pair, moved to the
    device) returning plain ``torch.Tensor``: the MetaTensors a MONAI dataset collates are unwrapped (no copy) before
    they reach the network. A MetaTensor input makes every operation of the forward pass and of the loss go through
    ``MetaTensor.__torch_function__``, which copies metadata onto each result: a fixed cost per operation, which
    weighs most where the operations themselves are quick (small images, a GPU); on TATL's networks with 64x64
    images on a CPU it is a fifth of a training step (``benchmarks/training.py``). The numbers computed
    are the same. Use it where no step after the network reads the batch's metadata (affine, applied operations), as in
    training and validation; keep the default where postprocessing inverts transforms (``Invertd``) or writes files.

    .. code-block:: python

        trainer = SupervisedTrainer(..., prepare_batch=PrepareBatchPlain())

    In a bundle config: ``"prepare_batch": {"_target_": "monai_skinattr.handlers.PrepareBatchPlain"}``.
    """

    def __call__(
        self,
        batchdata: Mapping[str, torch.Tensor] | torch.Tensor | Sequence[torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | torch.Tensor:
        return default_prepare_batch(plain_tensors(batchdata), device, non_blocking, **kwargs)
