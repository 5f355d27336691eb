"""What every encoder-decoder network of the package shares: the split, encoder freezing, stage weight transfer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["EncoderDecoder", "StagedEncoder", "SkipDecoder", "freeze_encoder", "load_stage_weights", "count_parameters"]


class EncoderDecoder(nn.Module):
    """
    ``head(decoder(encoder(x)))``: the encoder returns a list of feature maps (shallow to deep), the decoder turns
    that list into one map, the head maps it to ``out_channels`` logits (segmentation_models_pytorch's split).
    A frozen encoder (see :func:`freeze_encoder`) stays in eval mode when the network is put in training mode, so
    its BatchNorm statistics do not move either (as a Keras layer with ``trainable=False``).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.encoder_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))

    def train(self, mode: bool = True) -> EncoderDecoder:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self


class StagedEncoder(nn.Module):
    """An encoder that chains ``stages`` and returns every stage's output, shallow to deep."""

    def __init__(self, stages: Sequence[nn.Module], out_channels: Sequence[int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_channels = list(out_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features: list[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class SkipDecoder(nn.Module):
    """A decoder of ``stages(x, skip)``: stage ``i`` joins the running map with the encoder feature ``i`` levels
    above the bottleneck, deepest first."""

    def __init__(self, stages: Sequence[nn.Module], out_channels: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_channels = out_channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        n = len(features)
        for i, stage in enumerate(self.stages):
            x = stage(x, features[n - 2 - i])
        return x


def freeze_encoder(net: nn.Module, frozen: bool = True) -> nn.Module:
    """
    Freeze (TATL "FE") or unfreeze ("NF") the encoder of ``net`` — or of every member of an ensemble: its
    parameters stop receiving gradients and its BatchNorm layers stay in eval mode. Returns ``net``.

    .. code-block:: python

        net = freeze_encoder(EffUNet())
        optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    """
    targets = [m for m in net.modules() if isinstance(m, EncoderDecoder)]
    if not targets:
        raise TypeError(f"{type(net).__name__} has no encoder/decoder split to freeze.")
    for m in targets:
        m.encoder_frozen = frozen
        for p in m.encoder.parameters():
            p.requires_grad_(not frozen)
        m.train(m.training)
    return net


def _state_dict(checkpoint: str | Path | Mapping) -> Mapping[str, torch.Tensor]:
    """A state dict from a path or dict: a raw state dict, or MONAI ``CheckpointSaver``'s ``{"network": ...}``."""
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint '{path}' does not exist.")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("network", "model", "state_dict", "net"):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return checkpoint[key]
    return checkpoint


def load_stage_weights(
    net: nn.Module, checkpoint: str | Path | Mapping, strict: bool = True, exclude: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """
    Initialise ``net`` from a previous stage's checkpoint (TATL: stage 2 -> stage 3, encoder and decoder).

    Args:
        net: the network to initialise.
        checkpoint: a file saved by ``torch.save`` / MONAI's ``CheckpointSaver`` (``{"network": state_dict}``),
            or a state dict.
        strict: require every parameter of ``net`` (outside ``exclude``) to be in the checkpoint.
        exclude: key prefixes not to transfer (e.g. ``("head",)`` when the number of classes changes).

    Returns:
        ``{"loaded", "missing", "unexpected", "excluded"}`` key lists.

    Raises:
        ValueError: a tensor's shape differs, or ``strict`` and keys are missing.
    """
    state = {k.removeprefix("module."): v for k, v in _state_dict(checkpoint).items()}
    excluded = sorted(k for k in state if exclude and k.startswith(exclude))
    state = {k: v for k, v in state.items() if k not in excluded}
    own = {k: v for k, v in net.state_dict().items() if not (exclude and k.startswith(exclude))}
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError("checkpoint shapes differ from the network's:\n  " + "\n  ".join(mismatched))
    missing = sorted(set(own) - set(state))
    if strict and missing:
        raise ValueError(f"checkpoint lacks {len(missing)} key(s) of the network, e.g. {missing[:5]}.")
    loadable = {k: v for k, v in state.items() if k in own}
    net.load_state_dict(loadable, strict=False)
    return {
        "loaded": sorted(loadable),
        "missing": missing,
        "unexpected": sorted(set(state) - set(own)),
        "excluded": excluded,
    }


def count_parameters(net: nn.Module, bn_statistics: bool = True, trainable_only: bool = False) -> int:
    """
    Number of parameters; with ``bn_statistics`` also BatchNorm running means and variances (what Keras reports
    as non-trainable parameters, and so what TATL's Table 7 counts).
    """
    params = [p for p in net.parameters() if p.requires_grad or not trainable_only]
    total = sum(p.numel() for p in params)
    if bn_statistics and not trainable_only:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                total += m.running_mean.numel() + m.running_var.numel()
    return total
