"""Atomic checkpoints, per-epoch seeds and resuming a trainer from its last checkpoint (in process, toy network)."""

import threading

import pytest
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import EarlyStopHandler, MeanDice, ValidationHandler, from_engine, stopping_fn_from_metric
from monai.transforms import Activationsd, AsDiscreted, Compose
from monai.utils import set_determinism
from torch import nn

from monai_skinattr.handlers import AtomicDiskSaver, EpochSeed, ResumableCheckpointSaver


class _State:
    """An object whose state can be made unpicklable, to make a checkpoint write fail half way."""

    def __init__(self) -> None:
        self.value = 1

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


def _save_twice(saver, tmp_path) -> list[str]:
    obj = _State()
    checkpoint = Checkpoint({"a": obj, "b": _State()}, saver, filename_pattern="last.pt", n_saved=None)
    engine = Engine(lambda e, b: None)
    checkpoint(engine)
    obj.value = threading.Lock()  # torch.save cannot pickle it: the second write fails half way
    with pytest.raises(TypeError, match="pickle"):
        checkpoint(engine)
    return sorted(p.name for p in tmp_path.iterdir())


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    assert _save_twice(AtomicDiskSaver(tmp_path / "atomic"), tmp_path / "atomic") == ["last.pt"]
    assert torch.load(tmp_path / "atomic" / "last.pt", weights_only=True)["a"] == {"value": 1}
    # Ignite's own saver deletes the old file before writing the new one: nothing is left
    assert _save_twice(DiskSaver(tmp_path / "ignite", require_empty=False), tmp_path / "ignite") == []


def test_epoch_seed_makes_an_epoch_depend_only_on_its_number():
    def draws(start_epoch: int) -> dict[int, list[float]]:
        seen: dict[int, list[float]] = {}
        engine = Engine(lambda e, b: seen.setdefault(e.state.epoch, []).append(torch.rand(1).item()))
        EpochSeed(seed=3).attach(engine)
        engine.load_state_dict({"epoch": start_epoch, "epoch_length": 2, "max_epochs": 3})
        engine.run([0, 1], max_epochs=3)
        return seen

    full, resumed = draws(0), draws(2)
    assert list(resumed) == [3] and resumed[3] == full[3] and full[2] != full[3]


def _training(tmp_path, max_epochs: int = 8, crash_at: int | None = None, resume: bool = True):
    """A toy segmentation run with the bundle's pieces: shuffled data, dropout, SGD with momentum, early stopping."""
    set_determinism(seed=0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.3), nn.Conv2d(4, 1, 1))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(12, 1, 8, 8, generator=g)
    data = [{"image": x, "label": (x > 0.5).float()} for x in images]
    train_loader = torch.utils.data.DataLoader(data[:8], batch_size=2, shuffle=True)
    post = Compose([Activationsd("pred", sigmoid=True), AsDiscreted("pred", threshold=0.5)])
    stopper = EarlyStopHandler(patience=2, score_function=stopping_fn_from_metric("dice"))
    evaluator = SupervisedEvaluator(
        "cpu", torch.utils.data.DataLoader(data[8:], batch_size=2), net, postprocessing=post,
        key_val_metric={"dice": MeanDice(output_transform=from_engine(["pred", "label"]))}, val_handlers=[stopper],
    )  # fmt: skip
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    saver = ResumableCheckpointSaver(tmp_path, net, evaluator, {"optimizer": optimizer, "early_stop": stopper}, resume)
    trainer = SupervisedTrainer(
        "cpu", max_epochs, train_loader, net, optimizer, nn.BCEWithLogitsLoss(),
        train_handlers=[EpochSeed(0), ValidationHandler(1, evaluator), saver],
    )  # fmt: skip
    stopper.set_trainer(trainer)
    if crash_at is not None:

        @trainer.on(Events.ITERATION_COMPLETED(once=crash_at))
        def crash(engine):
            raise KeyboardInterrupt  # stands for a kill: no handler runs after it

    return trainer, evaluator, stopper, net


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    trainer, evaluator, _, net = _training(tmp_path / "a")
    trainer.run()
    expected = (evaluator.state.best_metric, evaluator.state.best_metric_epoch, trainer.state.epoch)
    best = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert not (tmp_path / "a" / "last.pt").exists()  # a finished run keeps model.pt only

    assert trainer.state.epoch == 7  # early stopping: no better score at epochs 6 and 7

    trainer, *_ = _training(tmp_path / "b", crash_at=25)  # 4 iterations per epoch: killed in epoch 7
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["trainer"]["iteration"] == 24  # epoch 6
    trainer, evaluator, stopper, resumed_net = _training(tmp_path / "b")
    trainer.run()
    assert (evaluator.state.best_metric, evaluator.state.best_metric_epoch, trainer.state.epoch) == expected
    assert all(torch.equal(v, best[k]) for k, v in torch.load(tmp_path / "b" / "model.pt").items())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in resumed_net.state_dict().items())


def test_resume_off_starts_again(tmp_path):
    trainer, *_ = _training(tmp_path, crash_at=5)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert (tmp_path / "last.pt").is_file()
    trainer, *_ = _training(tmp_path, max_epochs=1, crash_at=3, resume=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert trainer.state.epoch == 1 and not (tmp_path / "last.pt").exists()  # the stale state was dropped
