"""The thesis' study: downstream Dice and encoder robustness for every pretraining checkpoint, TIS and its tables."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...config import run_bundle
from ...metrics import select_offline, select_online, transferability_indicator_score
from ...utils.io import markdown_table, read_metrics_csv, write_table, write_text_atomic
from ...visualize import line_plot
from .downstream import MODES
from .pretraining import checkpoint_path

__all__ = ["Study"]

logger = logging.getLogger(__name__)


class Study:
    """
    The pretraining-length study (thesis ch. 2–4) as resumable runs of ``bundles/transfer``: for each network, the
    encoder is pretrained once (``pretrain.json``, checkpoints at ``save_epochs`` and the random init as epoch 0);
    for each dataset × network × mode, every checkpoint is scored by robustness (pooled features for ``decoder``
    mode, unpooled for ``full``) and trained downstream ``repeats`` times (``train.json`` then ``evaluate.json``,
    test Dice). Every finished run is recorded in ``<workdir>/study.json`` (atomically), so a stopped study resumes
    where it stopped. :meth:`tables` writes Tables 2.9 / 2.10 / 4.1 and the Dice-and-robustness plots.

    .. code-block:: python

        study = Study("bundles/transfer", "runs/study", datasets=["acdc"], networks=["unet"], save_epochs=[1, 5])
        study.run()
        print(study.tables())

    Args:
        bundle_root: the transfer bundle.
        workdir: where checkpoints, runs, the record and the tables go.
        datasets: ``acdc``, ``covidqu``, ``idrid``.
        networks: ``unet``, ``resnet50_attention``, ``swin``.
        modes: subset of :data:`MODES`.
        save_epochs: pretraining epochs whose encoders are transferred (the last one is the length of pretraining).
        downstream_epochs: downstream training epochs.
        repeats: downstream runs per initialisation (the thesis averages 5), seeds ``0 .. repeats-1``.
        dataset_dirs: the real folder of each dataset (``{"acdc": "/data/ACDC", ...}``); absent ones use the
            bundle's synthetic twins.
        overrides: other config values for every run (``dataset_dir``, ``spatial_size``, tiny network sizes...).
        pretrain_overrides: config values for ``pretrain.json`` only (``scheme``, ``imagefolder_dir``...).
    """

    def __init__(
        self,
        bundle_root: str | Path,
        workdir: str | Path,
        datasets: Sequence[str] = ("acdc", "covidqu", "idrid"),
        networks: Sequence[str] = ("unet", "resnet50_attention", "swin"),
        modes: Sequence[str] = MODES,
        save_epochs: Sequence[int] = (1, 5, 20, 50, 100, 150, 200, 250, 300),
        downstream_epochs: int = 150,
        repeats: int = 5,
        dataset_dirs: Mapping[str, str] | None = None,
        overrides: Mapping | None = None,
        pretrain_overrides: Mapping | None = None,
    ) -> None:
        if not set(modes) <= set(MODES) or not modes:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}.")
        self.bundle_root = Path(bundle_root)
        self.workdir = Path(workdir)
        self.datasets, self.networks, self.modes = list(datasets), list(networks), list(modes)
        self.epochs = [0, *sorted({int(e) for e in save_epochs})]
        self.downstream_epochs = int(downstream_epochs)
        self.repeats = int(repeats)
        self.dataset_dirs = dict(dataset_dirs or {})
        self.overrides = dict(overrides or {})
        self.pretrain_overrides = dict(pretrain_overrides or {})
        self.record_path = self.workdir / "study.json"
        self.record: dict[str, object] = json.loads(self.record_path.read_text()) if self.record_path.is_file() else {}

    # ------------------------------------------------------------------------------------------------- running
    def _done(self, key: str, value: object) -> None:
        self.record[key] = value
        write_text_atomic(json.dumps(self.record, indent=1, sort_keys=True), self.record_path)

    def _settings(self, dataset: str, network: str, mode: str) -> dict:
        """Config values of every run on ``dataset`` with ``network`` in ``mode``."""
        data = {"dataset_dir": self.dataset_dirs[dataset]} if dataset in self.dataset_dirs else {}
        return {**self.overrides, **data, "network": network, "dataset_name": dataset, "mode": mode}

    def pretrain_dir(self, network: str) -> Path:
        return self.workdir / "pretrain" / network

    def pretrain(self, network: str) -> None:
        """Pretrain ``network``'s encoder once, saving the encoders of :attr:`epochs`."""
        key = f"pretrain/{network}"
        if key in self.record:
            return
        logger.info("pretraining the %s encoder for %d epochs", network, self.epochs[-1])
        run_bundle(
            self.bundle_root,
            ["pretrain.json"],
            **{"network_options": self.overrides.get("network_options", {}), **self.pretrain_overrides},
            network=network,
            max_epochs=self.epochs[-1],
            save_epochs=self.epochs[1:],
            pretrain_dir=str(self.pretrain_dir(network)),
            pretrain_curves_dir=str(self.workdir / "eval" / "pretrain" / network),
        )
        self._done(key, [str(checkpoint_path(self.pretrain_dir(network), e)) for e in self.epochs])

    def robustness(self, dataset: str, network: str, mode: str) -> list[float]:
        """Robustness of every saved encoder of ``network`` on ``dataset`` (pooled for ``decoder`` mode)."""
        key = f"robustness/{dataset}/{network}/{mode}"
        if key not in self.record:
            paths = [str(checkpoint_path(self.pretrain_dir(network), e)) for e in self.epochs]
            output = self.workdir / "robustness" / f"{dataset}_{network}_{mode}.csv"
            settings = self._settings(dataset, network, mode)
            run_bundle(
                self.bundle_root,
                ["common.json", "robustness.json"],
                **settings,
                checkpoints=paths,
                robustness_file=str(output),
            )
            with open(output) as f:
                self._done(key, [float(r["robustness"]) for r in csv.DictReader(f)])
        return list(self.record[key])

    def downstream(self, dataset: str, network: str, mode: str, epoch: int, repeat: int) -> float:
        """Test Dice of one downstream run from the encoder pretrained for ``epoch`` epochs (0: random init)."""
        key = f"downstream/{dataset}/{network}/{mode}/epoch{epoch:03d}/run{repeat}"
        if key not in self.record:
            run = self.workdir / "runs" / key.removeprefix("downstream/")
            common = {
                **self._settings(dataset, network, mode),
                "init_checkpoint": str(checkpoint_path(self.pretrain_dir(network), epoch)),
                "seed": repeat,
                "models_dir": str(run / "models"),
                "output_dir": str(run / "eval"),
            }
            run_bundle(self.bundle_root, ["common.json", "train.json"], **common, max_epochs=self.downstream_epochs)
            run_bundle(self.bundle_root, ["common.json", "inference.json", "evaluate.json"], **common)
            self._done(key, read_metrics_csv(run / "eval" / "test")["test_dice"])
        return float(self.record[key])

    def run(self) -> None:
        """Every pretraining, robustness score and downstream run not recorded yet."""
        for network in self.networks:
            self.pretrain(network)
        for dataset in self.datasets:
            for network in self.networks:
                for mode in self.modes:
                    self.robustness(dataset, network, mode)
                    for epoch in self.epochs:
                        for repeat in range(self.repeats):
                            self.downstream(dataset, network, mode, epoch, repeat)

    # -------------------------------------------------------------------------------------------------- tables
    def dice(self, dataset: str, network: str, mode: str) -> np.ndarray:
        """``(len(epochs), repeats)`` test Dice of the recorded runs."""
        return np.asarray(
            [[self.downstream(dataset, network, mode, e, r) for r in range(self.repeats)] for e in self.epochs]
        )

    def tables(self) -> str:
        """
        Write and return Table 2.9 (best mean Dice over initialisations), Table 2.10 (worst / best mean Dice) and
        Table 4.1 (TIS of the encoder chosen by offline robustness, online robustness, the last checkpoint and no
        pretraining), each per dataset × network × mode, plus ``dice_robustness_<dataset>_<network>_<mode>.png``.
        """
        out = self.workdir / "tables"
        rows_29, rows_41, data = [], [], {}
        for dataset in self.datasets:
            for network in self.networks:
                for mode in self.modes:
                    mean = self.dice(dataset, network, mode).mean(axis=1)
                    rob = self.robustness(dataset, network, mode)
                    chosen = {
                        "offline robustness": select_offline(rob),
                        "online robustness": select_online(rob),
                        "last checkpoint": len(self.epochs) - 1,
                        "no pretraining": 0,
                    }
                    tis = {k: transferability_indicator_score(mean, selected=i) for k, i in chosen.items()}
                    name = [dataset, network, mode]
                    rows_29.append(
                        [*name, f"{mean.max():.4f}", self.epochs[int(mean.argmax())], f"{mean.min() / mean.max():.4f}"]
                    )
                    rows_41.append([*name, *(f"{v:.4f} (epoch {self.epochs[chosen[k]]})" for k, v in tis.items())])
                    data["/".join(name)] = {
                        "epochs": self.epochs,
                        "dice_mean": mean.tolist(),
                        "robustness": rob,
                        "tis": tis,
                        "chosen_epoch": {k: self.epochs[i] for k, i in chosen.items()},
                    }
                    line_plot(
                        self.epochs,
                        {"test Dice (mean)": mean, "robustness": rob},
                        out / f"dice_robustness_{dataset}_{network}_{mode}.png",
                        title=f"{dataset}, {network}, {mode}",
                        xlabel="pretraining epochs",
                        errors={"test Dice (mean)": self.dice(dataset, network, mode).std(axis=1)},
                    )
        what = (
            f"{self.repeats} run(s) per initialisation, {self.downstream_epochs} downstream epochs, encoders after "
            f"{self.epochs} pretraining epochs (0 = random init)"
        )
        header_29 = ["dataset", "network", "mode", "best Dice", "at epoch", "worst / best"]
        header_41 = [
            "dataset",
            "network",
            "mode",
            "TIS offline robustness",
            "TIS online robustness",
            "TIS last",
            "TIS none",
        ]
        md = markdown_table(header_29, rows_29, f"Tables 2.9 / 2.10: {what}", text_columns=3)
        md += "\n" + markdown_table(header_41, rows_41, f"Table 4.1: {what}", text_columns=3)
        write_table(out, "tables_2_9_2_10", markdown_table(header_29, rows_29, what, 3), header_29, rows_29, data)
        write_table(out, "table_4_1", markdown_table(header_41, rows_41, what, 3), header_41, rows_41, data)
        return md
