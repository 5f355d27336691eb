"""TATL's networks: a normalised U/Link segmenter, and the whole three-stage cascade as one ``nn.Module``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from monai_skinattr.networks import ChannelNormalization, EffLinkNet, EffUNet, ProbabilityEnsemble
from monai_skinattr.transforms.array import check_size

__all__ = ["ARCHS", "TATLSegmenter", "TATLCascadeNet", "lesion_boxes"]

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


def lesion_boxes(mask: torch.Tensor, offset: int) -> torch.Tensor:
    """
    Per image of a ``(B, 1, h, w)`` boolean mask, the lesion's bounding box grown by ``offset`` pixels and clipped
    to the grid, as ``(B, 4)`` integer ``[row_start, col_start, row_end, col_end]`` (end exclusive); an empty mask
    gives the whole grid. The same box as ``LesionBBoxCrop`` (MONAI ``generate_spatial_bounding_box`` with a
    margin, ``allow_smaller=True``).
    """
    rows = mask.any(dim=-1)[:, 0]
    cols = mask.any(dim=-2)[:, 0]
    row_start, row_end = _span(rows, offset)
    col_start, col_end = _span(cols, offset)
    return torch.stack([row_start, col_start, row_end, col_end], dim=1)


def _span(hits: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last index of ``hits`` (B, n) grown by ``offset`` and clipped; ``(0, n)`` when empty."""
    size = hits.shape[1]
    idx = torch.arange(size, device=hits.device).expand_as(hits)
    start = torch.where(hits, idx, size).min(dim=1).values
    end = torch.where(hits, idx, -1).max(dim=1).values + 1
    empty = ~hits.any(dim=1)
    start = torch.where(empty, torch.zeros_like(start), (start - offset).clamp(min=0))
    end = torch.where(empty, torch.full_like(end, size), (end + offset).clamp(max=size))
    return start, end


class TATLCascadeNet(nn.Module):
    """
    TATL's whole inference as one network, so it runs batched, exports to one TorchScript file and is served
    unchanged by MONAI Label: stage 1 finds the lesion at ``lesion_size``; each image's lesion box, grown by
    ``offset`` pixels on that grid and scaled to the input, is cut out and resampled to ``crop_size``
    (``torchvision.ops.roi_align``, one bilinear sample per output pixel, the same sampling as a crop followed by
    a bilinear resize); stage 2 (union) and stage 3 (one network per attribute) run on the crops; their maps are
    pasted back at their place (bilinear sampling through the crop's affine grid, zero outside the box).

    Input: ``(B, 3, H, W)`` RGB in [0, 1] at any size (the bundle feeds the photo resized to ``inference_size``).
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        lesion, boxes = self.image_boxes(x)
        rois = torch.cat([torch.arange(x.shape[0], device=x.device, dtype=x.dtype)[:, None], boxes], dim=1)
        rois = rois[:, [0, 2, 1, 4, 3]]  # roi_align wants (index, x1, y1, x2, y2)
        crops = roi_align(x, rois, output_size=self.crop_size, spatial_scale=1.0, sampling_ratio=1, aligned=True)
        maps = [self.union_net(crops)]
        for net in self.attribute_nets.values():
            maps.append(net(crops))
        pasted = self.paste(torch.cat(maps, dim=1), boxes, [h, w])
        return torch.cat([1 - lesion, lesion, pasted], dim=1)
