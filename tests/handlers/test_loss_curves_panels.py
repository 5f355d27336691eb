"""LossCurves and SegmentationPanels inside real Ignite engines."""

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor

from monai_skinattr.data.checks import read_2d
from monai_skinattr.handlers import LossCurves, SegmentationPanels
from monai_skinattr.visualize import ERROR_COLORS, error_map


def test_loss_curves_record_epoch_means_and_validation(tmp_path):
    validator = Engine(lambda e, b: b)
    validator.state.metrics = {}
    losses = iter([1.0, 3.0, 0.5, 0.5])

    def step(engine, batch):
        return [{"loss": torch.tensor(next(losses))}]

    trainer = Engine(step)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):
        validator.state.metrics = {"val_loss": 10.0 * engine.state.epoch}

    LossCurves(tmp_path, validator=validator).attach(trainer)
    trainer.run([0, 1], max_epochs=2)
    assert (tmp_path / "loss_curves.csv").read_text().splitlines() == [
        "epoch,train_loss,val_loss", "1,2.000000,10.000000", "2,0.500000,20.000000"
    ]  # fmt: skip
    assert read_2d(tmp_path / "loss_curves.png").shape[0] > 100


def test_segmentation_panels_and_error_map(tmp_path):
    truth = torch.zeros(1, 8, 10)
    truth[0, 2:6, 2:6] = 1
    pred = torch.zeros(1, 8, 10)
    pred[0, 4:8, 4:8] = 1
    image = MetaTensor(torch.rand(3, 8, 10), meta={"filename_or_obj": "/x/ISIC_0000007.jpg"})
    engine = Engine(lambda e, b: [{"image": image, "label": truth, "pred": pred}])
    SegmentationPanels(tmp_path).attach(engine)
    engine.run([0])
    errors = read_2d(tmp_path / "errors" / "ISIC_0000007.png")
    assert read_2d(tmp_path / "overlays" / "ISIC_0000007.png").shape[1] == 3 * 10 + 8
    colors = {tuple(c) for c in errors[:8].reshape(-1, 3)}
    expected = error_map(np.moveaxis(image.numpy(), 0, -1), truth[0].numpy(), pred[0].numpy())
    assert np.array_equal(errors, expected)
    # one pixel of each kind: true positive (4, 4), false positive (7, 7), false negative (2, 2) differ in colour
    assert len({tuple(errors[r, c]) for r, c in ((4, 4), (7, 7), (2, 2))}) == 3 and len(colors) > 3
    assert expected.shape[0] > 8 and len(ERROR_COLORS) == 3


def test_loss_curves_metric_columns_and_resumed_run(tmp_path):
    validator = Engine(lambda e, b: b)
    validator.state.metrics = {}

    def trainer(offset: float) -> Engine:
        engine = Engine(lambda e, b: {"loss": torch.tensor(offset + e.state.epoch)})

        @engine.on(Events.EPOCH_COMPLETED)
        def validate(engine):
            validator.state.metrics = {"val_loss": 0.5, "val_dice": 0.25 * engine.state.epoch}

        LossCurves(tmp_path, validator=validator, metric_keys=["val_dice"]).attach(engine)
        return engine

    trainer(0.0).run([0], max_epochs=3)  # killed after epoch 3, its checkpoint at epoch 2
    resumed = trainer(10.0)
    resumed.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "epoch", 2))  # as CheckpointLoader does
    resumed.run([0], max_epochs=4)
    assert (tmp_path / "loss_curves.csv").read_text().splitlines() == [
        "epoch,train_loss,val_loss,val_dice", "1,1.000000,0.500000,0.250000", "2,2.000000,0.500000,0.500000",
        "3,13.000000,0.500000,0.750000", "4,14.000000,0.500000,1.000000",
    ]  # fmt: skip
