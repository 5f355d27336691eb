"""Training and validation loss (and validation metrics) per epoch, as a CSV and a PNG line plot."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ignite.engine import Engine, Events

from ..utils.io import write_text_atomic
from ..visualize import line_plot

__all__ = ["LossCurves"]


class LossCurves:
    """
    Record the mean training loss of every epoch, the validator's ``val_loss_key`` metric and its ``metric_keys``
    after it, and rewrite ``<output_dir>/loss_curves.csv`` (``epoch,train_loss,val_loss,<metric_keys>``) and
    ``loss_curves.png`` at the end of each epoch. Rows of earlier epochs already in the CSV are kept, so a run resumed
    from its checkpoint continues its curves. List it after the ``ValidationHandler`` so the validation of that
    epoch has run.

    .. code-block:: python

        handlers = [
            ValidationHandler(validator=evaluator, interval=1),
            LossCurves("eval", validator=evaluator, metric_keys=["val_dice"]),
        ]

    Args:
        output_dir: where the CSV and PNG go.
        validator: the evaluator whose metrics hold the validation loss (``None``: training loss only).
        val_loss_key: name of the validation loss metric.
        loss_key: key of the loss in the trainer's output.
        title: plot title.
        metric_keys: other scalar metrics of the validator to record, one column each (e.g. ``["val_dice"]``).
    """

    def __init__(
        self,
        output_dir: str | Path,
        validator: Engine | None = None,
        val_loss_key: str = "val_loss",
        loss_key: str = "loss",
        title: str = "loss",
        metric_keys: Sequence[str] = (),
    ) -> None:
        self.path = Path(output_dir) / "loss_curves.csv"
        self.validator = validator
        self.val_loss_key = val_loss_key
        self.loss_key = loss_key
        self.title = title
        self.metric_keys = list(metric_keys)
        self.header = ["epoch", "train_loss", "val_loss", *self.metric_keys]
        self._sum, self._count = 0.0, 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)

    def _iteration(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output[0][self.loss_key] if isinstance(output, list) else output[self.loss_key]
        self._sum += float(loss)
        self._count += 1

    def _earlier(self, epoch: int) -> list[list[str]]:
        """The rows of epochs before ``epoch`` in the CSV (a resumed run's history), if it has the same columns."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        return [r for r in rows[1:] if int(r[0]) < epoch] if rows and rows[0] == self.header else []

    def _epoch(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        metrics = self.validator.state.metrics if self.validator is not None else {}
        nan = float("nan")
        values = [self._sum / max(self._count, 1), metrics.get(self.val_loss_key, nan)]
        values += [metrics.get(k, nan) for k in self.metric_keys]
        self._sum, self._count = 0.0, 0
        rows = [*self._earlier(epoch), [str(epoch), *(f"{float(v):.6f}" for v in values)]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic("".join(",".join(r) + "\n" for r in [self.header, *rows]), self.path)
        epochs = [int(r[0]) for r in rows]
        series = {"training": [float(r[1]) for r in rows]}
        if self.validator is not None:
            series["validation"] = [float(r[2]) for r in rows]
        line_plot(epochs, series, self.path.with_suffix(".png"), self.title, "epoch", "loss")
