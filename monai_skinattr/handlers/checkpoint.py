"""Training that survives being killed: atomic checkpoints, resume from the last one, per-epoch seeds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.data.utils import set_rnd
from monai.engines import Workflow
from monai.handlers import CheckpointLoader, EarlyStopHandler
from monai.utils import set_determinism

__all__ = ["AtomicDiskSaver", "EpochSeed", "ResumableCheckpointSaver"]

logger = logging.getLogger(__name__)


class AtomicDiskSaver(DiskSaver):
    """
    Ignite's ``DiskSaver`` that writes each checkpoint to a temporary file renamed into place (``atomic=True``) and
    deletes a checkpoint it replaces only after the new one is complete, so a run killed at any moment leaves the
    previous checkpoint or the new one on disk — never half of one, never none. (Ignite's ``Checkpoint`` removes the
    old file before saving the new one; MONAI's ``CheckpointSaver`` also writes in place.)

    .. code-block:: python

        best = Checkpoint({"model": net}, AtomicDiskSaver("models"), filename_pattern="model.pt", n_saved=1)
    """

    def __init__(self, dirname: str | Path, **kwargs: Any) -> None:
        super().__init__(dirname, atomic=True, require_empty=False, **kwargs)
        self._stale: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, filename, metadata)
        for old in self._stale:
            if old != filename:
                super().remove(old)
        self._stale.clear()

    def remove(self, filename: str) -> None:
        """Delete ``filename`` once the next checkpoint has been written (a file of the same name is replaced)."""
        self._stale.append(filename)


class EpochSeed:
    """
    Seed every random generator at the start of each epoch from ``seed + epoch`` (MONAI ``set_determinism``:
    Python, NumPy, PyTorch; and the random transforms of ``dataset``), as Ignite's ``DeterministicEngine`` and
    ``DistributedSampler.set_epoch`` do: the shuffling, augmentation and dropout of an epoch depend only on the seed
    and the epoch number, so a run resumed at epoch ``k`` repeats what an uninterrupted run does from there.

    .. code-block:: python

        trainer = SupervisedTrainer(..., train_handlers=[EpochSeed(seed=0, dataset=train_ds), ...])

    Args:
        seed: base seed of the run.
        dataset: the training dataset whose random transforms are re-seeded too (``None``: none).
    """

    def __init__(self, seed: int, dataset: object | None = None) -> None:
        self.seed = int(seed)
        self.dataset = dataset

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        seed = self.seed + engine.state.epoch
        set_determinism(seed=seed)
        if self.dataset is not None:
            set_rnd(self.dataset, seed)


class ResumableCheckpointSaver:
    """
    The checkpoints of a training run, written atomically (:class:`AtomicDiskSaver`) in ``save_dir``:

    - ``best_filename`` (``model.pt``): the network's weights when the validator's key metric is the best so far
      (what MONAI's ``CheckpointSaver(save_key_metric=True, key_metric_filename="model.pt")`` writes);
    - ``last_filename`` (``last.pt``): after every epoch, once validation has run, everything a killed run needs to
      carry on: the trainer (epoch, iteration), the network, the objects of ``state`` (optimizer, lr scheduler,
      MONAI's ``EarlyStopHandler``...), the best-model tracker and the validator's best metric and epoch.

    With ``resume`` and ``last_filename`` present, the trainer restores it when it starts (MONAI's
    ``CheckpointLoader``) and goes on from the next epoch. ``last_filename`` is deleted when the run completes (at
    ``max_epochs`` or stopped early: ``model.pt`` is what it produced), and at the start of a run without
    ``resume``, so it is never mixed with another run. Attach it to the trainer after the ``ValidationHandler``;
    pair it with :class:`EpochSeed` for the resumed run to repeat the uninterrupted one exactly.

    .. code-block:: python

        saver = ResumableCheckpointSaver("models", network, evaluator, {"optimizer": opt, "early_stop": stopper})
        trainer = SupervisedTrainer(..., train_handlers=[EpochSeed(0), ValidationHandler(1, evaluator), saver])

    Args:
        save_dir: folder of both checkpoints.
        network: the network trained.
        validator: the evaluator whose key metric selects the best model.
        state: other objects to restore on resume, each with ``state_dict`` / ``load_state_dict`` (MONAI's
            ``EarlyStopHandler`` too).
        resume: restore ``last_filename`` when it exists.
        best_filename: file name of the best network.
        last_filename: file name of the training state.
        map_location: where restored tensors go (``torch.load``'s argument).
    """

    def __init__(
        self,
        save_dir: str | Path,
        network: Any,
        validator: Workflow,
        state: Mapping[str, Any] | None = None,
        resume: bool = True,
        best_filename: str = "model.pt",
        last_filename: str = "last.pt",
        map_location: Any = None,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.network = network
        self.validator = validator
        self.state = dict(state or {})
        self.resume = bool(resume)
        self.last_path = self.save_dir / last_filename
        self.map_location = map_location
        self.best = Checkpoint(
            {"model": network},
            AtomicDiskSaver(self.save_dir),
            filename_pattern=best_filename,
            score_function=self._key_metric,
            n_saved=1,
        )
        self.last: Checkpoint | None = None

    def _key_metric(self, engine: Workflow) -> float:
        return float(engine.state.metrics[engine.state.key_metric_name])

    def state_dict(self) -> dict:
        """The best-model tracker and the validator's best metric and epoch."""
        return {
            "best": self.best.state_dict(),
            "best_metric": float(self.validator.state.best_metric),
            "best_metric_epoch": self.validator.state.best_metric_epoch,
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        self.best.load_state_dict(state_dict["best"])
        self.validator.state.best_metric = state_dict["best_metric"]
        self.validator.state.best_metric_epoch = state_dict["best_metric_epoch"]

    def attach(self, engine: Engine) -> None:
        self.validator.add_event_handler(Events.EPOCH_COMPLETED, self.best)
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save_last)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def _objects(self, engine: Engine) -> dict[str, Any]:
        # MONAI's EarlyStopHandler keeps Ignite's EarlyStopping (counter, best score) in ``_handler``, built by
        # ``set_trainer`` after the handlers are attached: look it up when saving or loading.
        state = {k: v._handler if isinstance(v, EarlyStopHandler) else v for k, v in self.state.items()}
        return {"trainer": engine, "network": self.network, **state, "checkpointer": self}

    def started(self, engine: Engine) -> None:
        """Restore the last training state (``resume``), or delete a stale one."""
        objects = self._objects(engine)
        # n_saved=None: the one fixed-name file is replaced (never removed first)
        self.last = Checkpoint(
            objects, AtomicDiskSaver(self.save_dir), filename_pattern=self.last_path.name, n_saved=None
        )
        if not self.last_path.is_file():
            return
        if not self.resume:
            logger.info("resume is off: deleting the previous run's %s", self.last_path)
            self.last_path.unlink(missing_ok=True)  # every rank may try
            return
        CheckpointLoader(str(self.last_path), objects, map_location=self.map_location)(engine)
        logger.info("resumed from %s after epoch %d", self.last_path, engine.state.epoch)

    def save_last(self, engine: Engine) -> None:
        if self.last is not None:
            self.last(engine)

    def completed(self, engine: Engine) -> None:
        """The run is over: its training state is no longer needed."""
        if idist.get_rank() == 0:
            self.last_path.unlink(missing_ok=True)
