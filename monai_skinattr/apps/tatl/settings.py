"""TATL's settings checked before any work, each error naming the setting as the user typed it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monai_skinattr import config
from monai_skinattr.config import as_bool, as_index, as_size

from .data import check_lesion_source
from .experiments import grid_offset

__all__ = ["check_settings", "check_offset"]


def check_offset(offset: object, lesion_size: Sequence[int], name: str = "offset", typed: object = None) -> int:
    """
    The lesion-box offset in pixels of the ``lesion_size`` grid: an integer from 0 up to, not including, the grid's
    short side (a larger box covers the whole photo along it). ``name`` and ``typed``: the setting the user gave
    (``paper_offset`` on TATL's 384-row grid, scaled to ``offset``), named in the error.
    """
    shown = offset if typed is None else typed
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"'{name}' must be an integer >= 0, got {shown!r}.")
    short = min(lesion_size)
    if offset >= short:
        scaled = "" if typed is None else f" ({offset} pixels on the lesion grid)"
        raise ValueError(
            f"'{name}' {shown!r}{scaled} must be smaller than {short}, the short side of the lesion grid "
            f"(lesion_size {list(lesion_size)})."
        )
    return offset


def check_settings(
    spatial_size: object,
    lesion_size: object,
    folds: Sequence[object],
    num_folds: object,
    switches: Mapping[str, object],
    offset: object = None,
    paper_offset: object = None,
    fold_name: str = "fold",
    encoder_freezable: bool = True,
    photo_size: object = None,
    lesion_source: object = "inner_folds",
    inner_folds: object = 5,
    lesion_dataset_dir: object = "",
    use_predicted_lesion: object = None,
) -> None:
    """
    Refuse, before any data or model is touched, a TATL setting that cannot be honoured exactly: ``spatial_size``
    and ``lesion_size`` (two positive multiples of 32, what the EfficientNet-b0 encoder halves five times), the
    lesion-box ``offset`` on the lesion grid or the experiments' ``paper_offset`` (pixels of TATL's 384-row grid,
    scaled to ``lesion_size``; :func:`check_offset`), ``photo_size`` (two positive integers: the size every photo is
    sampled at, ``load_transforms``), each of ``folds`` against ``num_folds`` (``fold_name``: the
    setting that holds them), where the crops' lesions come from (:func:`check_lesion_source`; the replaced
    ``use_predicted_lesion`` is refused: it would otherwise be ignored), and every switch
    of ``switches`` (:func:`~monai_skinattr.config.check_switches`).
    ``freeze_encoder`` on where the encoder is not ``encoder_freezable`` is refused too: TATL's FE freezes the
    attribute segmenters' encoders (stage 3) only; the Segment-Net and the union segmenters always train theirs.

    .. code-block:: python

        check_settings([384, 512], [384, 512], [0], 5, {"crop": True}, offset=40)  # fine
        check_settings([65, 97], [384, 512], [0], 5, {}, offset=40)  # ValueError: 'spatial_size' must be 2 ...
    """
    config.check_settings(spatial_size, 32, switches)  # the size every network of TATL needs, every switch
    lesion = as_size(lesion_size, "lesion_size", multiple=32)
    if photo_size is not None:
        as_size(photo_size, "photo_size")
    if paper_offset is not None:
        check_offset(grid_offset(paper_offset, lesion[0]), lesion, "paper_offset", paper_offset)
    if offset is not None:
        check_offset(offset, lesion)
    if isinstance(num_folds, bool) or not isinstance(num_folds, int) or num_folds < 2:
        raise ValueError(f"'num_folds' must be an integer >= 2, got {num_folds!r}.")
    if not folds:
        raise ValueError(f"'{fold_name}' names no fold.")
    for fold in folds:
        as_index(fold, fold_name, num_folds, "num_folds")
    if use_predicted_lesion is not None:
        raise ValueError(
            "'use_predicted_lesion' was replaced by 'lesion_source' (TATL bundle 0.6.0): 'lesion_source ground_truth' "
            "for ground-truth crops, 'segment_net' for the old predicted (in-sample) ones."
        )
    check_lesion_source(lesion_source, inner_folds, lesion_dataset_dir)
    if not encoder_freezable and as_bool(switches.get("freeze_encoder", False), "freeze_encoder"):
        raise ValueError(
            "'freeze_encoder' applies to stage 3 only (train_attribute.json, TATL's FE): the Segment-Net and the "
            "union segmenters always train their encoders."
        )
