"""TATL's networks: a normalised U/Link segmenter, and the whole three-stage cascade as one ``nn.Module``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from monai_skinattr.networks import (
    ChannelNormalization,
    EffLinkNet,
    EffUNet,
    ProbabilityEnsemble,
    optimize_for_inference,
)
from monai_skinattr.transforms.array import check_size, lesion_boxes

__all__ = ["ARCHS", "TATLSegmenter", "TATLCascadeNet", "optimize_cascade"]

#: TATL's two segmenter shapes: U (concatenating skips) and Link (adding skips).
ARCHS = {"unet": EffUNet, "linknet": EffLinkNet}


class TATLSegmenter(nn.Module):
    """
    One TATL segmenter: input normalisation (part of the network, so every stage and the cascade normalise the
    same way) followed by a U- or Link-shape network on a registered encoder. Takes RGB in [0, 1], returns logits.

    .. code-block:: python

        net = TATLSegmenter("linknet", normalization="instance")
        print(net(torch.rand(2, 3, 64, 96)).shape)  # torch.Size([2, 1, 64, 96])

    Args:
        arch: ``"unet"`` or ``"linknet"``.
        encoder: a registered encoder name (``monai_skinattr.networks.list_encoders()``).
        encoder_weights: local file of ImageNet encoder weights, or ``None`` for random initialisation.
        normalization: ``"imagenet"`` (ImageNet mean/std: use with ImageNet weights), ``"instance"`` (per-image
            channel-wise standardisation) or ``"none"``.
    """

    def __init__(
        self,
        arch: str = "unet",
        encoder: str = "efficientnet-b0",
        encoder_weights: str | Path | None = None,
        normalization: str = "instance",
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)}, got '{arch}'.")
        self.arch = arch
        self.encoder_name = encoder
        self.norm = ChannelNormalization(normalization)
        self.net = ARCHS[arch](in_channels=3, out_channels=1, encoder=encoder, encoder_weights=encoder_weights or None)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, encoder={self.encoder_name!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's feature maps of ``x`` (normalised first): the part networks trained "FE" share."""
        return self.net.encoder(self.norm(x))

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Logits from :meth:`encode`'s features: ``decode(encode(x))`` is ``forward(x)``."""
        return self.net.head(self.net.decoder(features))


class TATLCascadeNet(nn.Module):
    """
    TATL's whole inference as one network, so it runs batched, exports to one TorchScript file and is served
    unchanged by MONAI Label: stage 1 finds the lesion at ``lesion_size``; each image's lesion box, grown by
    ``offset`` pixels on that grid and scaled to the input, is cut out and resampled to ``crop_size``
    (``torchvision.ops.roi_align``, one bilinear sample per output pixel, the same sampling as a crop followed by
    a bilinear resize); stage 2 (union) and stage 3 (one network per attribute) run on the crops; their maps are
    pasted back at their place (bilinear sampling through the crop's affine grid, zero outside the box).

    Input: ``(B, 3, H, W)`` RGB in [0, 1] at any size (the bundle feeds the photo as training sampled it, at
    ``photo_size``: ``load_transforms``).
    Output: ``(B, 3 + A, H, W)`` probabilities, channels ``background`` (1 - lesion), ``lesion``, ``union`` and
    one per attribute in ``attributes`` order (channel index = MONAI Label label value).

    .. code-block:: python

        net = TATLCascadeNet(attributes=("streaks",), lesion_size=(64, 64), crop_size=(64, 64), offset=7)
        print(net(torch.rand(2, 3, 100, 120)).shape)  # torch.Size([2, 4, 100, 120])

    Args:
        attributes: attribute names, one stage-3 network each.
        archs: shapes averaged in every stage-2/3 ensemble (TATL: U + Link).
        lesion_arch: shape of the stage-1 Segment-Net.
        encoder: registered encoder of every network.
        normalization: input normalisation of every network (see :class:`TATLSegmenter`).
        lesion_size: stage-1 input size, the grid the offset is counted on (TATL: 384 x 512).
        crop_size: stage-2/3 input size (TATL: 384 x 512).
        offset: lesion box margin on the lesion grid (TATL: 40 at 384 x 512).
        crop: ``False`` skips stage 1 and segments the whole image (the "Stage 3" / "Stage 2,3" ablations).
        threshold: probability above which a pixel of the stage-1 map is lesion.
    """

    def __init__(
        self,
        attributes: Sequence[str],
        archs: Sequence[str] = ("unet", "linknet"),
        lesion_arch: str = "unet",
        encoder: str = "efficientnet-b0",
        normalization: str = "instance",
        lesion_size: Sequence[int] = (384, 512),
        crop_size: Sequence[int] = (384, 512),
        offset: int = 40,
        crop: bool = True,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if not attributes:
            raise ValueError("TATLCascadeNet needs at least one attribute.")

        def ensemble() -> ProbabilityEnsemble:
            return ProbabilityEnsemble([TATLSegmenter(a, encoder, None, normalization) for a in archs])

        self.attributes = list(attributes)
        self.channels = ["background", "lesion", "union", *self.attributes]
        self.lesion_net = ProbabilityEnsemble([TATLSegmenter(lesion_arch, encoder, None, normalization)])
        self.union_net = ensemble()
        self.attribute_nets = nn.ModuleDict({name: ensemble() for name in self.attributes})
        self.archs = list(archs)
        self.lesion_arch = lesion_arch
        self.encoder_name = encoder
        self.lesion_size = [check_size(s, "TATLCascadeNet lesion_size", 1) for s in lesion_size]
        self.crop_size = [check_size(s, "TATLCascadeNet crop_size", 1) for s in crop_size]
        self.offset = check_size(offset, "TATLCascadeNet offset", 0)
        self.crop = bool(crop)
        self.threshold = float(threshold)
        #: per shape in ``archs``: run its encoder once for all stage-2/3 members (see :meth:`share_encoders`)
        self.shared_encoders = [False] * len(self.archs)
        #: images per pass through the networks (0: the whole batch); see :func:`optimize_cascade`
        self.chunk = 0

    def extra_repr(self) -> str:
        return (
            f"attributes={self.attributes}, archs={self.archs}, lesion_arch={self.lesion_arch!r}, "
            f"encoder={self.encoder_name!r}"
        )

    def image_boxes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: the lesion probability at the input size and each image's crop box ``(B, 4)`` in input pixels
        (``[row_start, col_start, row_end, col_end]``, floats holding integers)."""
        h, w = x.shape[-2], x.shape[-1]
        small = F.interpolate(x, size=self.lesion_size, mode="bilinear", align_corners=False)
        lesion_small = self.lesion_net(small)
        lesion = F.interpolate(lesion_small, size=[h, w], mode="bilinear", align_corners=False)
        if not self.crop:
            whole = torch.tensor([0.0, 0.0, float(h), float(w)], device=x.device)
            return lesion, whole.expand(x.shape[0], 4)
        grid_box = lesion_boxes(lesion_small >= self.threshold, self.offset).to(torch.float64)
        scale = torch.tensor(
            [h / self.lesion_size[0], w / self.lesion_size[1], h / self.lesion_size[0], w / self.lesion_size[1]],
            dtype=torch.float64,
            device=x.device,
        )
        box = grid_box * scale
        box = torch.cat([box[:, :2].floor(), box[:, 2:].ceil()], dim=1)
        limit = torch.tensor([float(h), float(w), float(h), float(w)], dtype=torch.float64, device=x.device)
        return lesion, torch.minimum(box, limit).to(x.dtype)

    def paste(self, maps: torch.Tensor, boxes: torch.Tensor, size: list[int]) -> torch.Tensor:
        """Put ``(B, C, h, w)`` crop maps back into a zero canvas of ``size`` at ``boxes`` (input pixels)."""
        h, w = size[0], size[1]
        rows = torch.arange(h, device=maps.device, dtype=maps.dtype) + 0.5
        cols = torch.arange(w, device=maps.device, dtype=maps.dtype) + 0.5
        gy = (rows[None] - boxes[:, 0:1]) / (boxes[:, 2:3] - boxes[:, 0:1]) * 2 - 1
        gx = (cols[None] - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2]) * 2 - 1
        grid = torch.stack([gx[:, None, :].expand(-1, h, -1), gy[:, :, None].expand(-1, -1, w)], dim=-1)
        pasted = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = (gy.abs() <= 1)[:, :, None] & (gx.abs() <= 1)[:, None, :]
        return pasted * inside[:, None].to(maps.dtype)

    def crop_images(self, x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Each image's box cut out and resampled to ``crop_size`` (``roi_align``: crop + bilinear resize)."""
        rois = torch.cat([torch.arange(x.shape[0], device=x.device, dtype=x.dtype)[:, None], boxes], dim=1)
        rois = rois[:, [0, 2, 1, 4, 3]]  # roi_align wants (index, x1, y1, x2, y2)
        return roi_align(x, rois, output_size=self.crop_size, spatial_scale=1.0, sampling_ratio=1, aligned=True)

    def crop_maps(self, crops: torch.Tensor) -> torch.Tensor:
        """Stages 2 and 3 on the crops: ``(B, 1 + A, h, w)`` union and attribute probabilities."""
        if any(self.shared_encoders):
            return self._shared_crop_maps(crops)
        maps = [self.union_net(crops)]
        for net in self.attribute_nets.values():
            maps.append(net(crops))
        return torch.cat(maps, dim=1)

    @torch.jit.unused
    def _shared_crop_maps(self, crops):  # unannotated: TorchScript cannot resolve the string annotations of a stub
        """:meth:`crop_maps` with one encoder pass per shape whose members share their encoder (not scriptable)."""
        ensembles = [self.union_net, *self.attribute_nets.values()]
        total: list[torch.Tensor] = []
        for i, shared in enumerate(self.shared_encoders):
            members = [ensemble.nets[i] for ensemble in ensembles]
            features = members[0].encode(crops) if shared else None
            probs = [torch.sigmoid(m.decode(features) if shared else m(crops)) for m in members]
            total = probs if i == 0 else [t + p for t, p in zip(total, probs, strict=True)]
        return torch.cat(total, dim=1) / len(self.shared_encoders)

    def share_encoders(self) -> list[bool]:
        """
        Find, per shape in ``archs``, whether the union member and every attribute member hold the same encoder
        (equal normalisation and encoder weights: stage 3 trained with the encoder frozen, TATL "FE"); those
        shapes then run their encoder once per crop and only the decoders per member — the same outputs for
        a fraction of the work. Returns the per-shape flags (also kept in ``shared_encoders``).
        """
        ensembles = [self.union_net, *self.attribute_nets.values()]
        flags = []
        for i in range(len(self.archs)):
            first, *others = [ensemble.nets[i] for ensemble in ensembles]
            reference = first.net.encoder.state_dict()
            flags.append(
                all(
                    m.norm.mode == first.norm.mode
                    and all(torch.equal(t, reference[k]) for k, t in m.net.encoder.state_dict().items())
                    for m in others
                )
            )
        self.shared_encoders = flags
        return flags

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        outputs = []
        for part in x.split(self.chunk) if self.chunk > 0 else [x]:
            lesion, boxes = self.image_boxes(part)
            pasted = self.paste(self.crop_maps(self.crop_images(part, boxes)), boxes, [h, w])
            outputs.append(torch.cat([1 - lesion, lesion, pasted], dim=1))
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0]


def optimize_cascade(
    net: TATLCascadeNet,
    fold_bn: bool = True,
    channels_last: bool = True,
    silu: bool = True,
    share_encoders: bool = True,
    chunk: int = 0,
) -> TATLCascadeNet:
    """
    A trained cascade made ready for fast inference, in place, with the same masks: BatchNorm folded into the
    convolutions, one-kernel SiLU activations and channels-last weights
    (:func:`~monai_skinattr.networks.optimize_for_inference`), one encoder
    pass per shape when stage 3 was trained with the encoder frozen (:meth:`TATLCascadeNet.share_encoders`), and
    batches run ``chunk`` images at a time (0: whole batches; on a CPU, small chunks keep the feature maps in
    cache). ``benchmarks/cascade.py`` measures each. The result is for inference only: its state dict differs
    from the checkpoint's, so load the checkpoint first.

    .. code-block:: python

        net = prepare_network(TATLCascadeNet(attributes=ATTRIBUTES), "models/model.pt")
        net = optimize_cascade(net, chunk=2)
    """
    net.eval()
    if share_encoders:
        net.share_encoders()
    net.chunk = check_size(chunk, "optimize_cascade chunk", 0)
    optimize_for_inference(net, fold_bn=fold_bn, channels_last=channels_last, silu=silu)
    return net
