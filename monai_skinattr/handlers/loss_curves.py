"""Training and validation loss per epoch, as a CSV and a PNG line plot."""

from __future__ import annotations

from pathlib import Path

from ignite.engine import Engine, Events

from ..utils.io import write_text_atomic
from ..visualize import line_plot

__all__ = ["LossCurves"]


class LossCurves:
    """
    Record the mean training loss of every epoch and the validator's ``val_loss_key`` metric after it, and rewrite
    ``<output_dir>/loss_curves.csv`` and ``loss_curves.png`` at the end of each epoch. List it after the
    ``ValidationHandler`` so the validation of that epoch has run.

    .. code-block:: python

        handlers = [ValidationHandler(validator=evaluator, interval=1), LossCurves("eval", validator=evaluator)]

    Args:
        output_dir: where the CSV and PNG go.
        validator: the evaluator whose metrics hold the validation loss (``None``: training loss only).
        val_loss_key: name of the validation loss metric.
        loss_key: key of the loss in the trainer's output.
        title: plot title.
    """

    def __init__(
        self,
        output_dir: str | Path,
        validator: Engine | None = None,
        val_loss_key: str = "val_loss",
        loss_key: str = "loss",
        title: str = "loss",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.validator = validator
        self.val_loss_key = val_loss_key
        self.loss_key = loss_key
        self.title = title
        self.train: list[float] = []
        self.val: list[float] = []
        self._sum, self._count = 0.0, 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)

    def _iteration(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output[0][self.loss_key] if isinstance(output, list) else output[self.loss_key]
        self._sum += float(loss)
        self._count += 1

    def _epoch(self, engine: Engine) -> None:
        self.train.append(self._sum / max(self._count, 1))
        self._sum, self._count = 0.0, 0
        metrics = self.validator.state.metrics if self.validator is not None else {}
        self.val.append(float(metrics.get(self.val_loss_key, float("nan"))))
        epochs = list(range(1, len(self.train) + 1))
        rows = "".join(f"{e},{t:.6f},{v:.6f}\n" for e, t, v in zip(epochs, self.train, self.val, strict=True))
        write_text_atomic("epoch,train_loss,val_loss\n" + rows, self.output_dir / "loss_curves.csv")
        series = {"training": self.train}
        if self.validator is not None:
            series["validation"] = self.val
        line_plot(epochs, series, self.output_dir / "loss_curves.png", self.title, "epoch", "loss")
