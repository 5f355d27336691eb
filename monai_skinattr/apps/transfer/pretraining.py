"""Encoder pretraining for the transfer study: the thesis' "simple" and "advanced" schemes, checkpoints at the
configured epochs, and the optional online stop at the first local maximum of robustness."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from monai.transforms import (
    CastToTyped,
    EnsureChannelFirstd,
    EnsureTyped,
    NormalizeIntensityd,
    ScaleIntensityRanged,
    TorchVisiond,
    Transform,
)
from torch import nn
from torchvision.transforms import v2

from ...data.images import photo_reader
from ...metrics import select_online
from ...transforms import LoadWithReaderd
from ...transforms.pipelines import IMAGENET_MEAN, IMAGENET_STD
from ...utils.io import write_bytes_atomic, write_text_atomic

__all__ = [
    "SCHEMES",
    "EncoderCheckpoints",
    "MixUpCutMix",
    "checkpoint_path",
    "pretraining_transforms",
    "read_robustness",
]

logger = logging.getLogger(__name__)

#: the thesis' two pretraining recipes (METHODS.md §2): augmentation per image, and whether mixup / CutMix mix batches
SCHEMES = ("simple", "advanced")


def pretraining_transforms(scheme: str, size: int = 224, train: bool = True) -> list[Transform]:
    """
    Per-image preprocessing of the classification data, with torchvision's transforms through MONAI's
    ``TorchVisiond``: training ``"simple"`` = random resized crop + horizontal flip; ``"advanced"`` adds
    RandAugment (2 ops, magnitude 9) and random erasing (p 0.25), the DeiT recipe (mixup / CutMix act on batches:
    :class:`MixUpCutMix`); evaluation = resize the shorter side to ``size`` and centre crop (thesis §2.2.2). Every
    image is read as RGB (grey ones repeated, as ImageNet's few grey JPEGs); ImageNet mean/std normalisation last.

    .. code-block:: python

        train = Compose(pretraining_transforms("advanced", 224))
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got '{scheme}'.")
    out: list[Transform] = [
        LoadWithReaderd("image", photo_reader("RGB")),
        EnsureChannelFirstd("image"),
        EnsureTyped("image", track_meta=False),
        CastToTyped("image", dtype=torch.uint8),
    ]
    if train:
        out += [
            TorchVisiond("image", "RandomResizedCrop", size=size, antialias=True),
            TorchVisiond("image", "RandomHorizontalFlip"),
        ]
        if scheme == "advanced":
            out.append(TorchVisiond("image", "RandAugment", num_ops=2, magnitude=9))
    else:
        out += [
            TorchVisiond("image", "Resize", size=size, antialias=True),
            TorchVisiond("image", "CenterCrop", size=size),
        ]
    out.append(ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=0.0, b_max=1.0))
    if train and scheme == "advanced":
        out.append(TorchVisiond("image", "RandomErasing", p=0.25))
    return [*out, NormalizeIntensityd("image", subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True)]


class MixUpCutMix:
    """
    ``prepare_batch`` for MONAI's ``SupervisedTrainer`` that mixes every training batch with torchvision's
    ``MixUp`` (α 0.8) or ``CutMix`` (α 1.0), one of the two at random (DeiT): labels become soft class
    probabilities, which ``torch.nn.CrossEntropyLoss`` (with label smoothing) accepts. ``enabled=False`` passes
    batches through unchanged (the "simple" scheme).

    .. code-block:: python

        trainer = SupervisedTrainer(..., prepare_batch=MixUpCutMix(num_classes=1000))
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, enabled: bool = True):
        self.enabled = enabled
        self.mix = v2.RandomChoice(
            [
                v2.MixUp(alpha=mixup_alpha, num_classes=num_classes),
                v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes),
            ]
        )

    def __call__(self, batchdata: Mapping, device=None, non_blocking: bool = False, **kwargs) -> tuple:
        images, labels = batchdata["image"], torch.as_tensor(batchdata["label"]).long()
        if self.enabled and images.shape[0] > 1:
            images, labels = self.mix(torch.as_tensor(images), labels)
        return (
            torch.as_tensor(images).to(device=device, non_blocking=non_blocking),
            labels.to(device=device, non_blocking=non_blocking),
        )


def checkpoint_path(folder: str | Path, epoch: int) -> Path:
    """``<folder>/encoder_epoch<NNN>.pt``: the encoder after ``epoch`` pretraining epochs (0: random init)."""
    return Path(folder) / f"encoder_epoch{epoch:03d}.pt"


class EncoderCheckpoints:
    """
    Save ``encoder``'s state dict (the part a downstream network loads) before training (epoch 0, the random
    initialisation) and after each epoch in ``epochs``, atomically. With ``score`` (a function of the encoder
    returning its robustness on the target data), every saved encoder is scored, ``robustness.csv`` is rewritten,
    and — ``online`` — training stops at the first local maximum (the random init never counts), as the thesis'
    online selection; the selected epoch is written to ``online_selection.txt``.

    The random initialisation is saved when the first epoch starts, so a run resumed by
    :class:`~monai_skinattr.handlers.ResumableCheckpointSaver` (give it this object in ``state``: the scores so far
    travel in ``last.pt``) does not save it again. Attach it before that saver, so each epoch's encoder is saved
    before the training state that says the epoch is done.

    .. code-block:: python

        checkpoints = EncoderCheckpoints("models/pretrain", classifier.encoder, epochs=[1, 5, 20])
        saver = ResumableCheckpointSaver("models/pretrain", classifier, evaluator, {"encoders": checkpoints})
        trainer = SupervisedTrainer(..., train_handlers=[checkpoints, ValidationHandler(1, evaluator), saver])
    """

    def __init__(
        self,
        save_dir: str | Path,
        encoder: nn.Module,
        epochs: Sequence[int] = (1, 5, 20, 50, 100, 150, 200, 250, 300),
        score: Callable[[nn.Module], float] | None = None,
        online: bool = False,
    ) -> None:
        if online and score is None:
            raise ValueError("online selection needs a robustness score function.")
        self.save_dir = Path(save_dir)
        self.encoder = encoder
        self.epochs = sorted({int(e) for e in epochs})
        self.score = score
        self.online = online
        self.scores: dict[int, float] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED(once=1), self._save, 0)
        engine.add_event_handler(Events.EPOCH_COMPLETED(event_filter=lambda _, e: e in self.epochs), self._save)

    def state_dict(self) -> dict:
        """The robustness of the encoders saved so far."""
        return {"scores": dict(self.scores)}

    def load_state_dict(self, state_dict: Mapping) -> None:
        self.scores = {int(e): float(s) for e, s in state_dict["scores"].items()}

    def _save(self, engine: Engine, epoch: int | None = None) -> None:
        epoch = engine.state.epoch if epoch is None else epoch
        encoder = getattr(self.encoder, "module", self.encoder)
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, buffer)
        write_bytes_atomic(buffer.getvalue(), checkpoint_path(self.save_dir, epoch))
        if self.score is None:
            return
        self.scores[epoch] = float(self.score(encoder))
        logger.info("robustness of the encoder after %d epochs: %.4f", epoch, self.scores[epoch])
        rows = "".join(f"{e},{s:.6f}\n" for e, s in sorted(self.scores.items()))
        write_text_atomic("epoch,robustness\n" + rows, self.save_dir / "robustness.csv")
        ordered = [s for _, s in sorted(self.scores.items())]
        if self.online and len(ordered) > 2 and select_online(ordered) < len(ordered) - 1:
            chosen = sorted(self.scores)[select_online(ordered)]
            write_text_atomic(f"{chosen}\n", self.save_dir / "online_selection.txt")
            logger.info("online selection: robustness fell after epoch %d; pretraining stops", chosen)
            engine.terminate()


def read_robustness(folder: str | Path) -> dict[int, float]:
    """``{epoch: robustness}`` from the ``robustness.csv`` that :class:`EncoderCheckpoints` writes."""
    with open(Path(folder) / "robustness.csv") as f:
        return {int(r["epoch"]): float(r["robustness"]) for r in csv.DictReader(f)}
