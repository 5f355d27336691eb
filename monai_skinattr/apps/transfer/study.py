"""The thesis' study as a plan on :func:`monai_skinattr.runner.run_plan`: every pretraining checkpoint trained
downstream and scored by robustness, then Tables 2.9 / 2.10 / 4.1 and the Dice-and-robustness plots."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from functools import partial
from itertools import product
from pathlib import Path

import numpy as np

from ...metrics import select_offline, select_online, transferability_indicator_score
from ...runner import BundleRun, Plan
from ...utils.io import markdown_table, read_metrics_csv, write_table
from ...visualize import line_plot
from .pretraining import SCHEMES, checkpoint_path
from .training import MODES

__all__ = ["study_plan", "study_tables"]


def _paths(workdir: str | Path, dataset: str, network: str, mode: str, scheme: str) -> dict[str, Path]:
    """Where the study's runs write for one pretraining ``scheme``: its encoders, robustness CSV, downstream runs;
    ``random``: the downstream runs from the random initialisation, which every scheme shares."""
    work = Path(workdir)
    runs = work / "runs" / dataset / network / mode
    return {
        "pretrain": work / "pretrain" / f"{network}_{scheme}",
        "robustness": work / "robustness" / f"{dataset}_{network}_{mode}_{scheme}.csv",
        "runs": runs / scheme,
        "random": runs / "random",
    }


def study_plan(
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
    schemes: Sequence[str] = ("simple",),
) -> Plan:
    """
    The pretraining-length study (thesis ch. 2–4) as runs of ``bundles/transfer``, in this order (each run needs
    only the runs whose outputs it reads, so adding a repeat or a dataset redoes nothing that finished):

    - ``pretrain/<network>/<scheme>`` (``pretrain.json``): the encoder pretrained once per scheme, its checkpoints
      at ``save_epochs`` and the random init (epoch 0) in ``<workdir>/pretrain/<network>_<scheme>``; the random
      init of the first scheme is the study's one "no pretraining" initialisation, so Θ holds
      ``1 + len(schemes) * len(save_epochs)`` encoders per network (19 for the thesis' two schemes and 9 epochs);
    - for each dataset × network × mode × scheme, ``robustness/<dataset>/<network>/<mode>/<scheme>``
      (``common.json`` + ``robustness.json``): the random init and the scheme's checkpoints scored (pooled features
      for ``decoder`` mode, unpooled for ``full``) into ``<workdir>/robustness/<dataset>_<network>_<mode>_<scheme>
      .csv``; then for each repeat ``R`` (seed ``R``) ``downstream/<dataset>/<network>/<mode>/random/run<R>`` and
      for each checkpoint ``.../<scheme>/epoch<NNN>/run<R>``, each a ``train`` (``common.json`` + ``train.json``)
      and an ``evaluate`` (``common.json`` + ``inference.json`` + ``evaluate.json``: test metrics in
      ``<workdir>/runs/<dataset>/<network>/<mode>/{random,<scheme>/epoch<NNN>}/run<R>/eval/test/metrics.csv``).

    Every run name and folder carries its scheme: a study of another scheme in the same ``workdir`` adds runs and
    reuses none of the first one's encoders or results.

    Its table step is :func:`study_tables`.

    .. code-block:: python

        plan = study_plan("bundles/transfer", "runs/study", datasets=["acdc"], networks=["unet"], save_epochs=[1, 5])
        print(run_plan(plan))

    Args:
        bundle_root: the transfer bundle.
        workdir: where checkpoints, runs, the record and the tables go.
        datasets: ``acdc``, ``covidqu``, ``idrid``.
        networks: ``unet``, ``resnet50_attention``, ``swin`` (the ``network_name`` of the runs).
        modes: subset of :data:`~monai_skinattr.apps.transfer.MODES`.
        save_epochs: pretraining epochs whose encoders are transferred (the last one is the length of pretraining).
        downstream_epochs: downstream training epochs.
        repeats: downstream runs per initialisation (the thesis averages 5), seeds ``0 .. repeats-1``.
        dataset_dirs: the real folder of each dataset (``{"acdc": "/data/ACDC", ...}``); absent ones use the
            bundle's synthetic twins.
        overrides: other config values for every downstream and robustness run (``spatial_size``, tiny
            ``network_options``...); its ``network_options`` goes to the pretraining too.
        pretrain_overrides: config values for ``pretrain.json`` only (``imagefolder_dir``...).
        schemes: the pretraining schemes, ``simple`` and / or ``advanced`` (thesis §2.2.2).
    """
    if not modes or not set(modes) <= set(MODES):
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}.")
    schemes = list(schemes)
    if not schemes or not set(schemes) <= set(SCHEMES) or len(set(schemes)) < len(schemes):
        raise ValueError(f"schemes must be distinct names from {SCHEMES}, got {schemes}.")
    if "scheme" in (pretrain_overrides or {}):
        raise ValueError("the study's pretraining schemes are set by 'schemes', not by pretrain_overrides#scheme.")
    overrides, dirs = dict(overrides or {}), dict(dataset_dirs or {})
    epochs = [0, *sorted({int(e) for e in save_epochs})]
    work = Path(workdir)
    runs = []
    for network in networks:
        for scheme in schemes:
            runs.append(
                BundleRun(
                    f"pretrain/{network}/{scheme}",
                    ["pretrain.json"],
                    {
                        "network_options": overrides.get("network_options", {}),
                        **(pretrain_overrides or {}),
                        "network_name": network,
                        "scheme": scheme,
                        "max_epochs": epochs[-1],
                        "save_epochs": epochs[1:],
                        "pretrain_dir": str(work / "pretrain" / f"{network}_{scheme}"),
                        "pretrain_curves_dir": str(work / "eval" / "pretrain" / f"{network}_{scheme}"),
                    },
                    needs=[],
                )
            )
    for dataset in datasets:
        data = {"dataset_dir": dirs[dataset]} if dataset in dirs else {}
        for network in networks:
            random_init = checkpoint_path(work / "pretrain" / f"{network}_{schemes[0]}", 0)
            first = f"pretrain/{network}/{schemes[0]}"
            for mode in modes:
                settings = {**overrides, **data, "network_name": network, "dataset_name": dataset, "mode": mode}
                base = f"downstream/{dataset}/{network}/{mode}"
                random_runs = _paths(work, dataset, network, mode, schemes[0])["random"]
                for repeat in range(int(repeats)):
                    runs += _downstream(f"{base}/random/run{repeat}", random_runs / f"run{repeat}", settings,
                                        random_init, repeat, downstream_epochs, first)  # fmt: skip
                for scheme in schemes:
                    paths = _paths(work, dataset, network, mode, scheme)
                    checkpoints = [str(random_init)] + [str(checkpoint_path(paths["pretrain"], e)) for e in epochs[1:]]
                    runs.append(
                        BundleRun(
                            f"robustness/{dataset}/{network}/{mode}/{scheme}",
                            ["common.json", "robustness.json"],
                            {**settings, "checkpoints": checkpoints, "robustness_file": str(paths["robustness"])},
                            needs=sorted({first, f"pretrain/{network}/{scheme}"}),
                        )
                    )
                    for epoch, checkpoint in zip(epochs[1:], checkpoints[1:], strict=True):
                        for repeat in range(int(repeats)):
                            name = f"epoch{epoch:03d}/run{repeat}"
                            runs += _downstream(f"{base}/{scheme}/{name}", paths["runs"] / name, settings, checkpoint,
                                                repeat, downstream_epochs, f"pretrain/{network}/{scheme}")  # fmt: skip
    table = partial(
        study_tables, work, datasets, networks, modes, epochs, int(repeats), int(downstream_epochs), schemes
    )
    return Plan(bundle_root, workdir, runs, table=table)


def _downstream(
    prefix: str, folder: Path, settings: Mapping, checkpoint: str | Path, seed: int, epochs: int, pretrain: str
) -> list[BundleRun]:
    """A downstream ``train`` from ``checkpoint`` and its ``evaluate``, writing in ``folder``."""
    run = {
        **settings,
        "init_checkpoint": str(checkpoint),
        "seed": seed,
        "models_dir": str(folder / "models"),
        "output_dir": str(folder / "eval"),
    }
    return [
        BundleRun(f"{prefix}/train", ["common.json", "train.json"], {**run, "max_epochs": int(epochs)}, [pretrain]),
        BundleRun(f"{prefix}/evaluate", ["common.json", "inference.json", "evaluate.json"], run, [f"{prefix}/train"]),
    ]


def _robustness(path: Path) -> list[float]:
    """The scores ``score_encoders`` wrote, in checkpoint order."""
    with open(path) as f:
        return [float(r["robustness"]) for r in csv.DictReader(f)]


def _test_dice(run: Path) -> float:
    """The test Dice ``evaluate.json`` wrote for the downstream run in folder ``run``."""
    return read_metrics_csv(run / "eval" / "test")["test_dice"]


def study_tables(
    workdir: str | Path,
    datasets: Sequence[str],
    networks: Sequence[str],
    modes: Sequence[str],
    epochs: Sequence[int],
    repeats: int,
    downstream_epochs: int,
    schemes: Sequence[str] = ("simple",),
) -> str:
    """
    From what the runs of :func:`study_plan` wrote in ``workdir`` (robustness CSVs, test ``metrics.csv`` files),
    write and return Table 2.9 (best mean test Dice over initialisations), Table 2.10 (worst / best mean Dice) and
    Table 4.1 (TIS of the encoder chosen by offline robustness over every encoder and over the pretrained ones only
    — the thesis disregards the random init for online selection and leaves offline open —, online robustness, the
    last checkpoint and no pretraining), each per dataset × network × mode × pretraining scheme (the random init
    and that scheme's checkpoints), in ``<workdir>/tables/{tables_2_9_2_10,table_4_1}.{md,csv,json}``, plus
    ``dice_robustness_<dataset>_<network>_<mode>_<scheme>.png``; Tables 2.9 and 2.10 as published (a row per
    dataset, a column per network and mode, over every initialisation of every scheme) in ``table_2_9`` and
    ``table_2_10``; and Table 4.1 as published (a row per selection,
    the mean TIS over networks and schemes per dataset and mode, 4.1a, and over datasets and schemes per network and
    mode, 4.1b) in ``table_4_1a`` and ``table_4_1b``.

    .. code-block:: python

        print(study_tables("runs/study", ["acdc"], ["unet"], ["full"], epochs=[0, 1, 5], repeats=5,
                           downstream_epochs=150))

    Args:
        workdir: the plan's ``workdir``.
        datasets, networks, modes: the study's.
        epochs: the transferred encoders, in pretraining epochs (0: the random init).
        repeats: downstream runs per initialisation.
        downstream_epochs: downstream training epochs (for the captions).
        schemes: the pretraining schemes of the study.
    """
    out = Path(workdir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    epochs = list(epochs)
    rows_29, rows_41, data = [], [], {}
    for dataset, network, mode, scheme in product(datasets, networks, modes, schemes):
        paths = _paths(workdir, dataset, network, mode, scheme)
        folders = [paths["random"]] + [paths["runs"] / f"epoch{e:03d}" for e in epochs[1:]]
        dice = np.asarray([[_test_dice(folder / f"run{r}") for r in range(repeats)] for folder in folders])
        mean = dice.mean(axis=1)
        rob = _robustness(paths["robustness"])
        chosen = {
            "offline robustness": select_offline(rob),
            "offline robustness w/o random init": 1 + select_offline(rob[1:]),
            "online robustness": select_online(rob),
            "last checkpoint": len(epochs) - 1,
            "no pretraining": 0,
        }
        tis = {k: transferability_indicator_score(mean, selected=i) for k, i in chosen.items()}
        name = [dataset, network, mode, scheme]
        rows_29.append([*name, f"{mean.max():.4f}", epochs[int(mean.argmax())], f"{mean.min() / mean.max():.4f}"])
        rows_41.append([*name, *(f"{v:.4f} (epoch {epochs[chosen[k]]})" for k, v in tis.items())])
        data["/".join(name)] = {
            "epochs": epochs,
            "dice_mean": mean.tolist(),
            "robustness": rob,
            "tis": tis,
            "chosen_epoch": {k: epochs[i] for k, i in chosen.items()},
        }
        line_plot(
            epochs,
            {"test Dice (mean)": mean, "robustness": rob},
            out / f"dice_robustness_{'_'.join(name)}.png",
            title=", ".join(name),
            xlabel="pretraining epochs",
            errors={"test Dice (mean)": dice.std(axis=1)},
        )
    what = (
        f"{repeats} run(s) per initialisation, {downstream_epochs} downstream epochs, encoders after "
        f"{epochs} pretraining epochs of each scheme (0 = the random init, one for all schemes)"
    )
    header_29 = ["dataset", "network", "mode", "scheme", "best Dice", "at epoch", "worst / best"]
    header_41 = [
        "dataset",
        "network",
        "mode",
        "scheme",
        "TIS offline robustness",
        "TIS offline w/o random init",
        "TIS online robustness",
        "TIS last",
        "TIS none",
    ]
    md = markdown_table(header_29, rows_29, f"Tables 2.9 / 2.10: {what}", text_columns=4)
    md += "\n" + markdown_table(header_41, rows_41, f"Table 4.1: {what}", text_columns=4)
    write_table(out, "tables_2_9_2_10", markdown_table(header_29, rows_29, what, 4), header_29, rows_29, data)
    write_table(out, "table_4_1", markdown_table(header_41, rows_41, what, 4), header_41, rows_41, data)
    for name, header, rows, caption in _tables_2_9_2_10_published(data, datasets, networks, modes, what):
        md += "\n" + markdown_table(header, rows, caption, text_columns=1)
        write_table(out, name, markdown_table(header, rows, caption, 1), header, rows, {})
    for part, axis, averaged in (("a", datasets, "networks"), ("b", networks, "datasets")):
        header, rows = _table_4_1_published(data, axis, modes, 0 if part == "a" else 1)
        caption = f"Table 4.1{part}: TIS averaged over {averaged} and pretraining schemes ({what})"
        md += "\n" + markdown_table(header, rows, caption, text_columns=1)
        write_table(out, f"table_4_1{part}", markdown_table(header, rows, caption, 1), header, rows, {})
    return md


def _tables_2_9_2_10_published(
    data: Mapping[str, Mapping], datasets: Sequence[str], networks: Sequence[str], modes: Sequence[str], what: str
) -> list[tuple[str, list[str], list[list[str]], str]]:
    """Tables 2.9 and 2.10 as the thesis lays them out: a row per dataset, a column per network and mode; the best
    mean Dice over every initialisation of every scheme (Θ), and the ratio of the worst to the best."""
    header = ["dataset", *(f"{n} {m}" for n in networks for m in modes)]
    best, ratio = [], []
    for dataset in datasets:
        row_best, row_ratio = [dataset], [dataset]
        for network in networks:
            for mode in modes:
                entries = [e for k, e in data.items() if k.split("/")[:3] == [dataset, network, mode]]
                dice = [entries[0]["dice_mean"][0]] + [d for e in entries for d in e["dice_mean"][1:]]  # one random
                row_best.append(f"{max(dice):.3f}")
                row_ratio.append(f"{min(dice) / max(dice):.3f}")
        best.append(row_best)
        ratio.append(row_ratio)
    return [
        ("table_2_9", header, best, f"Table 2.9: best mean test Dice over every initialisation ({what})"),
        ("table_2_10", header, ratio, f"Table 2.10: worst / best mean test Dice over every initialisation ({what})"),
    ]


#: Table 4.1's rows as the thesis names them, from the selections :func:`study_tables` scores
PUBLISHED_ROWS = {
    "offline robustness": "robustness (offline)",
    "offline robustness w/o random init": "robustness (offline, w/o random init)",
    "online robustness": "robustness (online)",
    "last checkpoint": "ImageNet accuracy (full pretraining)",
    "no pretraining": "no pretraining",
}


def _table_4_1_published(
    data: Mapping[str, Mapping], axis: Sequence[str], modes: Sequence[str], position: int
) -> tuple[list[str], list[list[str]]]:
    """Table 4.1 as the thesis lays it out: a row per selection, a column per ``axis`` entry (dataset: 4.1a,
    ``position`` 0; network: 4.1b, ``position`` 1) and mode, each the mean TIS over the other entries and schemes."""
    header = ["selection", *(f"{x} {m}" for x in axis for m in modes)]
    rows = []
    for method, shown in PUBLISHED_ROWS.items():
        row = [shown]
        for x in axis:
            for mode in modes:
                tis = [
                    e["tis"][method] for k, e in data.items() if k.split("/")[position] == x and k.split("/")[2] == mode
                ]
                row.append(f"{np.mean(tis):.3f}")
        rows.append(row)
    return header, rows
