"""The library stage runner: what a plan run again skips, resumes and redoes (bundle runs stubbed)."""

import json
import logging

import pytest

from monai_skinattr import runner
from monai_skinattr.runner import RECORD, BundleRun, Plan, read_record, refuse_unused_settings, run_plan


@pytest.fixture
def bundle(tmp_path):
    """A bundle whose ``train.json`` has a ``resume`` switch and whose ``table.json`` has none."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "common.json").write_text('{"seed": 0}')
    (tmp_path / "configs" / "train.json").write_text('{"resume": true}')
    (tmp_path / "configs" / "table.json").write_text('{"out": "x"}')
    return tmp_path


class Calls(list):
    """The stubbed bundle runs, as (name, resume); the run named ``kill`` raises and never finishes."""

    kill: str | None = None


@pytest.fixture
def calls(monkeypatch):
    made = Calls()

    def run_bundle(bundle_root, configs, **override):
        made.append((override["name"], override.get("resume")))
        if override["name"] == made.kill:
            raise KeyboardInterrupt  # stands for SIGKILL: the run never finishes

    monkeypatch.setattr(runner, "run_bundle", run_bundle)
    return made


def _plan(bundle, epochs=2, table=None):
    runs = [
        BundleRun("a", ["common.json", "train.json"], {"name": "a"}),
        BundleRun("b", ["common.json", "train.json"], {"name": "b", "max_epochs": epochs}),
        BundleRun("c", ["common.json", "train.json"], {"name": "c"}),
        BundleRun("d", ["common.json", "table.json"], {"name": "d"}),
    ]
    return Plan(bundle, bundle / "work", runs, table)


def test_a_killed_plan_resumes_the_interrupted_run_and_redoes_what_follows(bundle, calls, caplog):
    calls.kill = "c"
    with pytest.raises(KeyboardInterrupt):
        run_plan(_plan(bundle))
    assert {k: v["finished"] for k, v in read_record(bundle / "work").items()} == {"a": True, "b": True, "c": False}
    calls.clear()
    calls.kill = None
    with caplog.at_level(logging.INFO, logger="monai_skinattr.runner"):
        assert run_plan(_plan(bundle, table=lambda: "| table |")) == "| table |"
    assert calls == [("c", True), ("d", None)]  # resumed from its checkpoint; table.json has no resume switch
    assert "[1/4] a: finished before with the same settings, skipped" in caplog.text
    assert "[3/4] c: resuming from its last checkpoint" in caplog.text and "[4/4] d: running" in caplog.text
    record = json.loads((bundle / "work" / RECORD).read_text())["runs"]
    assert all(v["finished"] for v in record.values()) and record["b"]["settings"]["max_epochs"] == 2
    assert record["b"]["settings"]["configs"] == ["common.json", "train.json"]


def test_finished_runs_are_skipped_changed_ones_redone_from_scratch(bundle, calls):
    run_plan(_plan(bundle))
    calls.clear()
    run_plan(_plan(bundle))
    assert calls == []  # every run finished with the same settings
    run_plan(_plan(bundle, epochs=3))
    assert calls == [("b", False), ("c", False), ("d", None)]  # b changed: it and what follows, from scratch
    calls.clear()
    run_plan(_plan(bundle, epochs=3), resume="false")  # as typed on the command line
    assert [c[0] for c in calls] == ["a", "b", "c", "d"] and not any(c[1] for c in calls)


def test_an_interrupted_run_with_other_settings_starts_again(bundle, calls):
    calls.kill = "b"
    with pytest.raises(KeyboardInterrupt):
        run_plan(_plan(bundle))
    calls.clear()
    calls.kill = None
    run_plan(_plan(bundle, epochs=5))
    assert calls == [("b", False), ("c", False), ("d", None)]


def test_bad_plans_are_refused_by_name(bundle):
    with pytest.raises(ValueError, match=r"run names must be unique, repeated: \['a'\]"):
        Plan(bundle, bundle, [BundleRun("a", ["train.json"]), BundleRun("a", ["train.json"])])
    with pytest.raises(ValueError, match="run 'a': 'resume' is the runner's to set"):
        BundleRun("a", ["train.json"], {"resume": False})
    with pytest.raises(ValueError, match="'resume' must be true or false"):
        run_plan(Plan(bundle, bundle / "w", []), resume="maybe")


def test_a_run_is_redone_only_when_a_run_it_needs_ran(bundle, calls):
    """Independent variants: changing one redoes it and what reads it, not its neighbours."""

    def plan(epochs_b):
        return Plan(bundle, bundle / "work", [
            BundleRun("train/a", ["common.json", "train.json"], {"name": "train/a"}, needs=[]),
            BundleRun("eval/a", ["common.json", "table.json"], {"name": "eval/a"}, needs=["train/a"]),
            BundleRun("train/b", ["common.json", "train.json"], {"name": "train/b", "max_epochs": epochs_b}, needs=[]),
            BundleRun("eval/b", ["common.json", "table.json"], {"name": "eval/b"}, needs=["train/b"]),
        ])  # fmt: skip

    run_plan(plan(1))
    calls.clear()
    run_plan(plan(2))
    assert calls == [("train/b", False), ("eval/b", None)]
    with pytest.raises(ValueError, match=r"run 'x' needs \['y'\], which are not earlier runs"):
        Plan(bundle, bundle, [BundleRun("x", ["train.json"], needs=["y"]), BundleRun("y", ["train.json"])])


def test_settings_a_plan_does_not_pass_on_are_refused_by_name(bundle):
    plan = '{"workdir": "w", "spatial_size": [8, 8], "overrides": {"batch_size": "@batch_size"}, "out": "@models_dir"}'
    (bundle / "configs" / "plan.json").write_text(plan)
    common = '{"bundle_root": ".", "seed": 0, "spatial_size": [64, 64], "batch_size": 2, "models_dir": "m"}'
    (bundle / "configs" / "common.json").write_text(common)
    files = str([str(bundle / "configs" / "common.json"), str(bundle / "configs" / "plan.json")])
    argv = ["/venv/lib/monai/bundle/__main__.py", "run", "--config_file", files, "--workdir", "x", "--bundle_root", "b"]
    refuse_unused_settings([*argv, "--spatial_size", "[4, 4]", "--batch_size", "3", "--models_dir", "y"])
    with pytest.raises(ValueError, match=r"--seed would reach no run of this plan: plan.json neither sets nor passes"):
        refuse_unused_settings([*argv, "--seed", "3"])
    refuse_unused_settings(["pytest", "--seed", "3"])  # not a monai.bundle command line: nothing to check
