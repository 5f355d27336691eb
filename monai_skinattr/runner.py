"""
The one stage runner: a *plan* is an ordered list of named bundle runs (configs + overrides) and a table step.

Every command that runs several of a bundle's configs in order (a paper table, a study, a pipeline) declares a
:class:`Plan` and hands it to :func:`run_plan`. The runner keeps one record per plan, ``<workdir>/runs.json``,
written atomically before and after each run: a run is keyed by its name and its settings (configs and
overrides). Running a plan again

- skips each run recorded finished with the same settings, up to the first run that has to run;
- resumes that run from its last checkpoint when it was started with the same settings and never finished (a
  killed run; bundles whose configs declare ``resume`` carry on from their last checkpoint, the others start
  the run again);
- redoes every run after it, since their inputs may have changed;
- with ``resume=False``, redoes everything.

(MONAI's ``AutoRunner`` does the same for Auto3DSeg: the plan is data, the runner is generic, the record lives
beside the outputs.)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monai.bundle import ConfigParser

from .config import as_bool, run_bundle
from .utils.io import write_text_atomic

__all__ = ["BundleRun", "Plan", "RECORD", "run_plan", "read_record"]

logger = logging.getLogger(__name__)

#: the record of a plan's runs, in its ``workdir``
RECORD = "runs.json"


@dataclass(frozen=True)
class BundleRun:
    """
    One run of a bundle: its ``configs`` (file names under ``<bundle_root>/configs``, later ones override earlier
    ones) with ``overrides``, under a ``name`` unique in its plan (``"union/unet"``, ``"fold0/evaluate"``).

    .. code-block:: python

        BundleRun("lesion", ["common.json", "train_lesion.json"], {"max_epochs": 6})
    """

    name: str
    configs: Sequence[str]
    overrides: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "resume" in self.overrides:
            raise ValueError(f"run '{self.name}': 'resume' is the runner's to set (run_plan(..., resume=...)).")

    def settings(self) -> dict:
        """What keys the run in the record: its configs and overrides, as JSON would store them."""
        return json.loads(json.dumps({"configs": list(self.configs), **self.overrides}, default=str))


@dataclass
class Plan:
    """
    A method's one-command table: ``runs`` of the bundle at ``bundle_root`` in order, recorded in
    ``<workdir>/runs.json``, then ``table()`` (which reads what the runs wrote and returns the Markdown).

    .. code-block:: python

        plan = Plan("bundles/iscf", "runs/iscf", [BundleRun("train", ["common.json", "train.json"])], table=None)
        run_plan(plan)
    """

    bundle_root: str | Path
    workdir: str | Path
    runs: list[BundleRun]
    table: Callable[[], str] | None = None

    def __post_init__(self) -> None:
        names = [r.name for r in self.runs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"a plan's run names must be unique, repeated: {repeated}.")


def read_record(workdir: str | Path) -> dict[str, dict]:
    """The record of the plan in ``workdir``: run name -> ``{"settings": ..., "finished": bool}`` (``{}`` if none)."""
    path = Path(workdir) / RECORD
    return json.loads(path.read_text())["runs"] if path.is_file() else {}


def _declares_resume(bundle_root: Path, configs: Sequence[str]) -> bool:
    """Whether the run's configs have a ``resume`` switch (training that carries on from its last checkpoint)."""
    parser = ConfigParser()
    parser.read_config([str(bundle_root / "configs" / c) for c in configs])
    return "resume" in parser


def run_plan(plan: Plan, resume: object = True) -> str | None:
    """
    Run ``plan`` (see the module docstring for what is skipped, resumed and redone) and return its table.

    .. code-block:: python

        print(run_plan(monai_skinattr.apps.iscf.ablation_plan("bundles/iscf", "runs/iscf", {"max_epochs": 5})))

    Args:
        plan: the runs and the table step.
        resume: ``False`` redoes every run (a string such as ``"false"`` from the command line is understood).
    """
    bundle_root, workdir = Path(plan.bundle_root), Path(plan.workdir)
    path = workdir / RECORD
    record = read_record(workdir)
    redo = not as_bool(resume, "resume")
    total = len(plan.runs)
    for i, run in enumerate(plan.runs, start=1):
        settings = run.settings()
        entry = record.get(run.name)
        same = not redo and entry is not None and entry["settings"] == settings
        if same and entry["finished"]:
            logger.info("[%d/%d] %s: finished before with the same settings, skipped (%s)", i, total, run.name, path)
            continue
        redo = True
        before = {r.name for r in plan.runs[: i - 1]}
        record = {
            **{k: v for k, v in record.items() if k in before},
            run.name: {"settings": settings, "finished": False},
        }
        _write(path, record)
        override = dict(run.overrides)
        if _declares_resume(bundle_root, run.configs):
            override["resume"] = same
        how = "resuming from its last checkpoint" if same and "resume" in override else "running"
        logger.info("[%d/%d] %s: %s", i, total, run.name, how)
        start = time.monotonic()
        run_bundle(bundle_root, run.configs, **override)
        record[run.name]["finished"] = True
        _write(path, record)
        logger.info("[%d/%d] %s: done in %.0f s", i, total, run.name, time.monotonic() - start)
    return plan.table() if plan.table is not None else None


def _write(path: Path, record: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps({"runs": record}, indent=2), path)
