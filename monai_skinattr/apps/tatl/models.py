"""TATL's checkpoints: checking a stage's attribute, and assembling the trained stages into the cascade."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from monai_skinattr.data.isic import ATTRIBUTES
from monai_skinattr.networks import load_stage_weights
from monai_skinattr.utils.io import write_text_atomic

from .networks import TATLCascadeNet

__all__ = [
    "check_attribute",
    "cascade_settings",
    "stage_checkpoints",
    "assemble_cascade",
    "DEFAULT_SETTINGS",
    "network_settings",
    "trained_photo_size",
]

#: How the cascade is built when ``models/cascade.json`` is absent (TATL's sizes, ISIC 2018 attributes).
#: ``photo_size`` is the size every photo was sampled at in training (``load_transforms``), and so in inference.
DEFAULT_SETTINGS = {
    "attributes": list(ATTRIBUTES),
    "archs": ["unet", "linknet"],
    "lesion_arch": "unet",
    "encoder": "efficientnet-b0",
    "normalization": "instance",
    "lesion_size": [384, 512],
    "crop_size": [384, 512],
    "offset": 40,
    "crop": True,
    "photo_size": [768, 1024],
}
#: settings of ``cascade.json`` that say how the cascade was trained, not how :class:`TATLCascadeNet` is built
_RECORD_ONLY = ("photo_size", "untrained", "inference_size")


def check_attribute(name: str, attributes: Sequence[str]) -> str:
    """``name`` if it is one of ``attributes``, else an error listing them."""
    if name not in attributes:
        raise ValueError(f"attribute '{name}' is not one of this dataset's attributes {list(attributes)}.")
    return name


def cascade_settings(models_dir: str | Path) -> dict:
    """
    How the cascade in ``models_dir`` was built (``cascade.json`` beside ``model.pt``), else the defaults. A
    ``cascade.json`` without ``photo_size`` (assembled before the bundle recorded how its photos were sampled, 0.5.0)
    is refused: its networks saw photos sampled another way, and serving them with today's sampling would be wrong
    without a sign.
    """
    path = Path(models_dir) / "cascade.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if saved and "photo_size" not in saved:
        raise ValueError(
            f"{path} does not record photo_size: the cascade was assembled before TATL sampled training and inference "
            "photos one way (bundle 0.5.0); train it again."
        )
    return {**DEFAULT_SETTINGS, **saved}


def network_settings(settings: Mapping) -> dict:
    """The arguments of :class:`TATLCascadeNet` among cascade ``settings`` (:func:`cascade_settings`)."""
    return {k: v for k, v in settings.items() if k not in _RECORD_ONLY}


def trained_photo_size(settings: Mapping, photo_size: Sequence[int]) -> list[int]:
    """
    ``photo_size`` when it is the size the cascade's photos were sampled at in training (``settings["photo_size"]``,
    :func:`cascade_settings`), else an error: the networks saw photos sampled one way (:func:`load_transforms`), and
    inference must sample them the same way.
    """
    trained = [int(s) for s in settings["photo_size"]]
    if [int(s) for s in photo_size] != trained:
        raise ValueError(
            f"photo_size {list(photo_size)} is not the {trained} this cascade was trained on (models/cascade.json): "
            "photos must be sampled as in training; retrain with that photo_size to change it."
        )
    return trained


def stage_checkpoints(settings: Mapping) -> dict[str, str]:
    """
    Each cascade member (``TATLCascadeNet`` submodule) and the checkpoint its stage config writes under a models
    folder — the layout :func:`assemble_cascade` joins and MONAI Label's fine-tuning splits again.

    .. code-block:: python

        stage_checkpoints({"archs": ["unet"], "attributes": ["streaks"]})
        # {'lesion_net.nets.0': 'lesion/model.pt', 'union_net.nets.0': 'union/unet/model.pt',
        #  'attribute_nets.streaks.nets.0': 'attributes/streaks/unet/model.pt'}
    """
    files = {"lesion_net.nets.0": "lesion/model.pt"}
    for i, arch in enumerate(settings["archs"]):
        files[f"union_net.nets.{i}"] = f"union/{arch}/model.pt"
        for name in settings["attributes"]:
            files[f"attribute_nets.{name}.nets.{i}"] = f"attributes/{name}/{arch}/model.pt"
    return files


def assemble_cascade(models_dir: str | Path, settings: Mapping, metadata: str | Path | None = None) -> Path:
    """
    Join the stage checkpoints under ``models_dir`` (``lesion/model.pt``, ``union/<arch>/model.pt``,
    ``attributes/<name>/<arch>/model.pt``) into one :class:`TATLCascadeNet` state dict ``models_dir/model.pt``
    plus ``cascade.json`` (how to build it). A stage that was not trained (an ablation) keeps its random weights
    and is listed under ``"untrained"``. With the bundle's ``metadata`` file, also writes ``metadata.json`` beside
    the checkpoint with this cascade's output channels (ISIC 2017 cascades have no globules). Returns the path of
    ``model.pt``.
    """
    models = Path(models_dir)
    settings = {**DEFAULT_SETTINGS, **settings}
    net = TATLCascadeNet(**network_settings(settings))
    members = {prefix: models / rel for prefix, rel in stage_checkpoints(settings).items()}
    untrained = []
    for prefix, path in members.items():
        if path.is_file():
            load_stage_weights(net.get_submodule(prefix), path, strict=True)
        else:
            untrained.append(str(path.relative_to(models)))
    if any(p.startswith("attributes/") for p in untrained):
        raise FileNotFoundError(f"stage-3 checkpoints missing under {models}: {[p for p in untrained if 'attr' in p]}")
    target = models / "model.pt"
    tmp = target.with_name(".model.pt.tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(target)
    write_text_atomic(json.dumps({**settings, "untrained": untrained}, indent=2), models / "cascade.json")
    if metadata is not None:
        meta = json.loads(Path(metadata).read_text())
        pred = meta["network_data_format"]["outputs"]["pred"]
        pred["num_channels"] = len(net.channels)
        pred["channel_def"] = {str(i): name for i, name in enumerate(net.channels)}
        write_text_atomic(json.dumps(meta, indent=4), models / "metadata.json")
    return target
