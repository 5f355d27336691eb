"""How a downstream network is trained from a pretrained encoder: the thesis' two modes."""

from __future__ import annotations

__all__ = ["MODES", "encoder_frozen"]

#: downstream training modes: every weight, or the decoder (and head) on a frozen encoder
MODES = ("full", "decoder")


def encoder_frozen(mode: str) -> bool:
    """
    Whether downstream training in ``mode`` (one of :data:`MODES`) freezes the pretrained encoder: ``"decoder"``
    trains the decoder and head only (the encoder's weights and BatchNorm statistics stay), ``"full"`` every weight.
    The ``frozen`` argument of :func:`monai_skinattr.networks.prepare_network`.

    .. code-block:: python

        net = prepare_network(thesis_network("unet", out_channels=4), "encoder_epoch020.pt",
                              frozen=encoder_frozen("decoder"), part="encoder")

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got '{mode}'.")
    return mode == "decoder"
