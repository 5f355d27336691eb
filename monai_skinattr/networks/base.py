"""What every encoder-decoder network of the package shares: the split, encoder freezing, stage weight transfer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "EncoderDecoder",
    "StagedEncoder",
    "SkipDecoder",
    "count_parameters",
    "describe",
    "freeze_encoder",
    "load_stage_weights",
    "prepare_network",
]


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


def describe(net: nn.Module) -> str:
    """A network's class and settings as one line, e.g. ``TATLSegmenter(arch='unet', encoder='efficientnet-b0')``
    (its ``extra_repr``), for messages about checkpoints that do not fit it."""
    extra = net.extra_repr()
    return f"{type(net).__name__}({extra})" if extra and "\n" not in extra else type(net).__name__


def _state_dict(checkpoint: str | Path | Mapping, expected: str = "") -> Mapping[str, torch.Tensor]:
    """A state dict from a path or dict: a raw state dict, or MONAI ``CheckpointSaver``'s ``{"network": ...}``; a
    ``.safetensors`` file (e.g. timm's weights on the Hugging Face hub) is read with ``safetensors``.
    ``expected`` (what the file should hold) completes the message when the file is missing or unreadable."""
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        hint = f"; it should hold the weights of {expected}" if expected else ""
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint '{path}' does not exist{hint}.")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file  # comes with timm

                checkpoint = load_file(path, device="cpu")
            else:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, pickle of a whole model, not a torch file at all...
            reason = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"checkpoint '{path}' cannot be read ({reason}){hint}.") from None
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"checkpoint '{path}' holds a {type(checkpoint).__name__}, not a state dict{hint}.")
    for key in ("network", "model", "state_dict", "net"):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return checkpoint[key]
    return checkpoint


def _examples(keys: Sequence[str], n: int = 2) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_stage_weights(
    net: nn.Module, checkpoint: str | Path | Mapping, strict: bool = True, exclude: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """
    Initialise ``net`` from a previous stage's checkpoint (TATL: stage 2 -> stage 3, encoder and decoder), or load
    a trained network for inference. A checkpoint that does not fit is one error, on one line, naming the file and
    the network expected (:func:`describe`) — not PyTorch's list of every key.

    .. code-block:: python

        load_stage_weights(EffUNet(), "models/union/unet/model.pt")  # strict: every tensor, nothing else

    Args:
        net: the network to initialise.
        checkpoint: a file saved by ``torch.save`` / MONAI's ``CheckpointSaver`` (``{"network": state_dict}``),
            or a state dict.
        strict: require the checkpoint's tensors (outside ``exclude``) to be exactly the network's.
        exclude: key prefixes not to transfer (e.g. ``("head",)`` when the number of classes changes).

    Returns:
        ``{"loaded", "missing", "unexpected", "excluded"}`` key lists.

    Raises:
        FileNotFoundError: ``checkpoint`` is a path that does not exist.
        ValueError: the file cannot be read, a tensor's shape differs, or ``strict`` and the keys differ.
    """
    expected = describe(net)
    source = f"checkpoint '{checkpoint}'" if isinstance(checkpoint, (str, Path)) else "the state dict"
    state = {k.removeprefix("module."): v for k, v in _state_dict(checkpoint, expected).items()}
    excluded = sorted(k for k in state if exclude and k.startswith(exclude))
    state = {k: v for k, v in state.items() if k not in excluded}
    own = {k: v for k, v in net.state_dict().items() if not (exclude and k.startswith(exclude))}
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} tensor shapes differ (checkpoint vs network: {_examples(mismatched)})")
    if strict and missing:
        problems.append(f"it lacks {len(missing)} of the network's {len(own)} tensors ({_examples(missing)})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} of its tensors are not the network's ({_examples(unexpected)})")
    if problems:
        raise ValueError(
            f"{source} does not fit {expected}: {'; '.join(problems)}. It was saved from another architecture or "
            "stage; pass the checkpoint trained for this network."
        )
    loadable = {k: v for k, v in state.items() if k in own}
    net.load_state_dict(loadable, strict=False)
    return {"loaded": sorted(loadable), "missing": missing, "unexpected": unexpected, "excluded": excluded}


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


#: Initialisation schemes of :func:`init_weights` (the thesis, METHODS.md §2, section 2.1 "Weight initialization").
INIT_SCHEMES = ("he", "swin")


def init_weights(module: nn.Module, scheme: str = "he") -> nn.Module:
    """
    Initialise every convolution, linear and normalisation layer of ``module`` in place as the transfer thesis does
    (section 2.1), and return ``module``. Biases are set to 0, normalisation weights to 1.

    - ``"he"`` (U-Net, ResNet50 Attention U-Net and their classification heads): convolution and linear weights from
      N(0, 2 / fan_in) (``kaiming_normal_``, fan-in, ReLU gain).
    - ``"swin"`` (Swin U-Net): linear weights from a normal of std 0.02 truncated to [-2, 2] (``trunc_normal_``);
      convolutions (the patch embedding and the 1x1 output projection) from N(0, 1 / (3 fan_in)), i.e. the thesis'
      Eq. 2.1 with gamma = 1/3. (``SwinUNet`` then gives its final patch expanding, a linear layer, the same.)

    .. code-block:: python

        from monai_skinattr.networks import init_weights

        head = init_weights(torch.nn.Linear(768, 1000), "swin")
        print(bool(head.bias.any()))  # False

    Raises:
        ValueError: an unknown ``scheme``.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown initialisation scheme '{scheme}'; use one of {INIT_SCHEMES}.")
    for m in module.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            if scheme == "he":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            else:  # gain sqrt(2 / (1 + a^2)) = sqrt(1/3)
                nn.init.kaiming_normal_(m.weight, a=5**0.5, mode="fan_in", nonlinearity="leaky_relu")
        elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


def prepare_network(
    net: nn.Module, init_checkpoint: str | Path = "", frozen: bool = False, part: str = ""
) -> nn.Module:
    """
    A training stage's network: ``net`` (or its submodule ``part``, e.g. ``"encoder"`` for an encoder-only
    checkpoint) initialised strictly from ``init_checkpoint`` when one is given (:func:`load_stage_weights`), then
    its encoder frozen when ``frozen`` (:func:`freeze_encoder`; TATL's "FE", the thesis' decoder-only mode).
    Returns ``net``.

    .. code-block:: python

        net = prepare_network(EffUNet(), "models/union/unet/model.pt", frozen=True)
        net = prepare_network(thesis_network("unet", out_channels=4), "encoder_epoch020.pt", part="encoder")
    """
    if init_checkpoint:
        load_stage_weights(net.get_submodule(part) if part else net, init_checkpoint, strict=True)
    return freeze_encoder(net, frozen) if frozen else net
