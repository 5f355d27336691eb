"""
The one stage runner: a *plan* is an ordered list of named bundle runs (configs + overrides) and a table step.

Every command that runs several of a bundle's configs in order (a paper table, a study, a pipeline) declares a
:class:`Plan` and hands it to :func:`run_plan`. The runner keeps one record per plan, ``<workdir>/runs.json``,
written atomically before and after each run: a run is keyed by its name and its settings (configs and
overrides). Running a plan again

- skips each run recorded finished with the same settings, unless a run it needs ran again;
- resumes a run from its last checkpoint when it was started with the same settings and never finished (a
  killed run; bundles whose configs declare ``resume`` carry on from their last checkpoint, the others start
  the run again);
- redoes every run that needs one that ran (by default a run needs every run before it; ``BundleRun.needs``
  narrows that to the runs whose outputs it reads, so an independent variant or repeat is not redone);
- with ``resume=False``, redoes everything.

(MONAI's ``AutoRunner`` does the same for Auto3DSeg: the plan is data, the runner is generic, the record lives
beside the outputs.)
"""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monai.bundle import ConfigParser

from .config import as_bool, run_bundle
from .utils.io import write_text_atomic

__all__ = ["BundleRun", "Plan", "RECORD", "bundle_setting", "read_record", "refuse_unused_settings", "run_plan"]

logger = logging.getLogger(__name__)

#: the record of a plan's runs, in its ``workdir``
RECORD = "runs.json"


@dataclass(frozen=True)
class BundleRun:
    """
    One run of a bundle: its ``configs`` (file names under ``<bundle_root>/configs``, later ones override earlier
    ones) with ``overrides``, under a ``name`` unique in its plan (``"union/unet"``, ``"fold0/evaluate"``).
    ``needs``: the names of the earlier runs whose outputs it reads (``None``: every earlier run).

    .. code-block:: python

        BundleRun("lesion", ["common.json", "train_lesion.json"], {"max_epochs": 6})
        BundleRun("evaluate/b", ["common.json", "evaluate.json"], {"models_dir": "b"}, needs=["train/b"])
    """

    name: str
    configs: Sequence[str]
    overrides: Mapping = field(default_factory=dict)
    needs: Sequence[str] | None = None

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
        for i, run in enumerate(self.runs):
            unknown = sorted(set(run.needs or ()) - set(names[:i]))
            if unknown:
                raise ValueError(f"run '{run.name}' needs {unknown}, which are not earlier runs of the plan.")


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
    names = {r.name for r in plan.runs}
    record = {k: v for k, v in read_record(workdir).items() if k in names}
    redo_all = not as_bool(resume, "resume")
    ran: set[str] = set()
    total = len(plan.runs)
    for i, run in enumerate(plan.runs, start=1):
        settings = run.settings()
        needs = [r.name for r in plan.runs[: i - 1]] if run.needs is None else run.needs
        entry = record.get(run.name)
        same = not redo_all and entry is not None and entry["settings"] == settings and not ran.intersection(needs)
        if same and entry["finished"]:
            logger.info("[%d/%d] %s: finished before with the same settings, skipped (%s)", i, total, run.name, path)
            continue
        ran.add(run.name)
        record[run.name] = {"settings": settings, "finished": False}
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


def bundle_setting(bundle_root: str | Path, key: str, overrides: Mapping | None = None) -> object:
    """
    The value the bundle's ``common.json`` gives ``key`` with ``overrides`` applied: the stage configs' own
    defaults, so a plan never restates them in Python.

    .. code-block:: python

        bundle_setting("bundles/tatl", "data_root", {"dataset_dir": "/data/ISIC2018"})  # validated: '/data/ISIC2018'
    """
    parser = ConfigParser()
    parser.read_config(str(Path(bundle_root) / "configs" / "common.json"))
    parser.update({"bundle_root": str(bundle_root), **{k: v for k, v in (overrides or {}).items() if v is not None}})
    return parser.get_parsed_content(key)


#: ``python -m monai.bundle run`` arguments that are not config keys, and ``bundle_root`` (every run gets the plan's)
_COMMAND_ARGS = {
    "config_file", "meta_file", "logging_file", "args_file", "init_id", "run_id", "final_id", "tracking",
    "workflow_type", "workflow_name", "bundle_root",
}  # fmt: skip


def refuse_unused_settings(argv: Sequence[str] | None = None) -> None:
    """
    For a plan config run by ``python -m monai.bundle run`` on top of the stage configs: refuse, by name and
    before any work, a ``--key`` typed on the command line that belongs to the stage configs (``common.json``...)
    but that the plan config neither sets nor uses (``@key`` anywhere in it, e.g. in the ``overrides`` it passes
    on to its runs) — it would reach no run. A plan config calls it in its ``initialize``; outside
    ``monai.bundle`` (``argv`` of another program) it checks nothing.

    .. code-block:: python

        refuse_unused_settings(["monai/bundle/__main__.py", "run", "--config_file",
                                "['b/configs/common.json','b/configs/pipeline.json']", "--seed", "3"])
        # ValueError: --seed would reach no run of this plan ...
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv or Path(argv[0]).parent.name != "bundle" or "run" not in argv[1:2]:
        return
    typed = {a[2:].split("=", 1)[0] for a in argv[2:] if a.startswith("--")} - _COMMAND_ARGS
    files = _config_files(argv)
    if len(files) < 2:
        return
    text = Path(files[-1]).read_text()
    used = set(json.loads(text)) | set(re.findall(r"@([A-Za-z_]\w*)", text))
    stage_keys = set().union(*(json.loads(Path(f).read_text()) for f in files[:-1]))
    unused = sorted(typed & stage_keys - used)
    if unused:
        raise ValueError(
            f"{', '.join('--' + k for k in unused)} would reach no run of this plan: {Path(files[-1]).name} neither "
            "sets nor passes it on. Add it to the plan config's overrides, or run the stage configs directly."
        )


def _config_files(argv: Sequence[str]) -> list[str]:
    """The ``--config_file`` of a ``monai.bundle`` command line, as a list."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config_file"):
            value = arg.split("=", 1)[1] if "=" in arg else argv[i + 1]
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                parsed = value
            return [str(f) for f in parsed] if isinstance(parsed, (list, tuple)) else [str(parsed)]
    return []


def _write(path: Path, record: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps({"runs": record}, indent=2), path)
