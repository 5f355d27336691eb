"""The two lesion-segmentation bundles (MobileNetV2 U-Net, ISCF transformer U-Net) end to end at tiny size."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out
from monai.data import MetaTensor
from monai.transforms import Invertd

from monai_skinattr.bundles import BUNDLES_DIR, META_SCHEMA
from monai_skinattr.data import lesion_splits
from monai_skinattr.data.checks import read_2d
from monai_skinattr.metrics import isic_task1_score
from monai_skinattr.runner import read_record
from tests.plan_kill import kill_during, run_command

BUNDLES = BUNDLES_DIR
MOBILENET = BUNDLES / "mobilenet_unet"
ISCF = BUNDLES / "iscf"


def bundle(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def configs(root: Path, *names: str) -> list[str]:
    return [str(root / "configs" / n) for n in names]


def plan_command(root: Path, plan: str, work: Path, data: Path, year: int) -> list[str]:
    """The plan's one command (``common.json`` + the plan config) at tiny size: 12 photos, 64 x 64, 1 epoch."""
    return [
        "-m", "monai.bundle", "run", "--config_file", json.dumps(configs(root, "common.json", plan)),
        "--bundle_root", str(root), "--workdir", str(work), "--dataset_dir", str(data), "--make_synthetic", "true",
        "--synthetic", json.dumps({"n": 12, "size": [64, 80], "seed": 0, "year": year}),
        "--spatial_size", "[64, 64]", "--max_epochs", "1", "--batch_size", "4",
    ]  # fmt: skip


def log_opened(folder: Path) -> Callable[[], bool]:
    """``ready`` of :func:`kill_during`: a run's TensorBoard log in ``folder`` is open (its trainer is built)."""
    return lambda: any(folder.glob("events.out.tfevents.*"))


def killed_and_resumed(command: list[str], work: Path, run_name: str, ready: Callable, names: list[str]) -> None:
    """Run ``command`` into ``work``, SIGKILL it while ``run_name`` (a training run) runs (once ``ready()``), run it
    again to the end; check that the record shows every run of ``names`` finished and that the rerun skipped the runs
    before ``run_name``, resumed it (its config declares ``resume``) and redid the ones after."""
    kill_during(command, work, run_name, ready)
    killed = names.index(run_name)
    assert [n for n, r in read_record(work).items() if r["finished"]] == names[:killed]
    rerun = run_command(command).stdout
    record = read_record(work)
    assert list(record) == names and all(r["finished"] for r in record.values())
    for i, name in enumerate(names, start=1):
        done = "finished before with the same settings, skipped" if i <= killed else "running"
        done = "resuming from its last checkpoint" if i == killed + 1 else done
        assert f"[{i}/{len(names)}] {name}: {done}" in rerun, name


@pytest.fixture(scope="module")
def mobilenet_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("mobilenet")
    stdout = run_command(plan_command(MOBILENET, "pipeline.json", work / "work", work / "data", 2016)).stdout
    return work, stdout


def test_three_phases_table_resumes_after_kill(mobilenet_run):
    work, stdout = mobilenet_run
    assert "| phase | lr | lowest val loss | test loss | IoU | Dice | ISIC thr. Jaccard |" in stdout
    for row in ("| encoder frozen | 0.001 |", "| stage 4 open | 0.0001 |", "| all layers open | 0.0001 |"):
        assert row in stdout
    assert (
        "| 4,771,585 | 2,223,872 |" in stdout and "| 6,452,929 | 542,528 |" in stdout and "| 6,995,457 | 0 |" in stdout
    )
    results = json.loads((work / "work" / "phases.json").read_text())
    assert list(results) == ["frozen", "last", "all"]
    # killed while the second phase trains (its TensorBoard log is open), then run again: the same table
    resumed = work / "resumed"
    names = [f"{step}/{phase}" for phase in ("frozen", "last", "all") for step in ("train", "evaluate")]
    command = plan_command(MOBILENET, "pipeline.json", resumed, work / "data", 2016)
    killed_and_resumed(command, resumed, "train/last", log_opened(resumed / "eval" / "last"), names)
    assert (resumed / "phases.md").read_text() == (work / "work" / "phases.md").read_text()
    assert (resumed / "models" / "model.pt").is_file()


def test_phases_chain_and_pictures(mobilenet_run):
    work, _ = mobilenet_run
    run = work / "work"
    for phase in ("frozen", "last", "all"):
        assert (run / "models" / phase / "model.pt").is_file()
        curves = (run / "eval" / phase / "loss_curves.csv").read_text().splitlines()
        assert curves[0] == "epoch,train_loss,val_loss" and len(curves) == 2
        assert (run / "eval" / phase / "loss_curves.png").stat().st_size > 1000
    test = lesion_splits(work / "data")["test"]
    out = run / "eval" / "all" / "test"
    truths, preds = [], []
    for entry in test:
        mask = read_2d(out / "masks" / f"{entry['id']}_segmentation.png")
        truth = read_2d(entry["label"])
        assert mask.shape == truth.shape == (64, 80) and set(np.unique(mask)) <= {0, 255}
        truths.append(truth)
        preds.append(mask)
        for kind in ("overlays", "errors"):
            assert (out / kind / f"{entry['id']}.png").is_file()
    scores = isic_task1_score(truths, preds)
    saved = dict(line.split(",") for line in (out / "metrics.csv").read_text().splitlines())
    assert float(saved["test_jaccard"]) == pytest.approx(scores["jaccard"], abs=1e-6)
    assert float(saved["test_dice"]) == pytest.approx(scores["dice"], abs=1e-6)
    # the test loss: the training loss (DiceCE) of the logits, resized back to each photo's size, against its mask
    parser = ConfigParser()
    parser.read_config([str(MOBILENET / "configs" / c) for c in ("common.json", "inference.json", "evaluate.json")])
    ran = {k: v for k, v in read_record(run)["evaluate/all"]["settings"].items() if k != "configs"}
    parser.update({**ran, "bundle_root": str(MOBILENET), "device": "$torch.device('cpu')"})  # as the run was
    pre, loss = parser.get_parsed_content("preprocessing"), parser.get_parsed_content("loss")
    net = parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(run / "models" / "all" / "model.pt", map_location="cpu", weights_only=True))
    losses = []
    for entry in test:
        data = pre(dict(entry))
        with torch.no_grad():
            data["pred"] = MetaTensor(net(data["image"][None].as_tensor())[0])
        logits = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(data)["pred"]
        losses.append(float(loss(logits.as_tensor()[None], data["label"].as_tensor()[None])))
    assert float(saved["test_loss"]) == pytest.approx(np.mean(losses), abs=1e-5)


def _zoo_checks(root: Path, train: list[str], models: Path, data: Path, tmp_path: Path) -> None:
    """The model zoo's checks, called in process as ``python -m monai.bundle <check>`` calls them."""
    meta, infer = str(root / "configs" / "metadata.json"), str(root / "configs" / "inference.json")
    verify_metadata(meta_file=meta, filepath=str(META_SCHEMA))
    verify_net_in_out("network_def", meta, infer, bundle_root=str(root))
    ts = tmp_path / "model.ts"
    ckpt_export("network_def", str(ts), ckpt_file=str(models / "model.pt"), meta_file=meta, config_file=infer,
                bundle_root=str(root))  # fmt: skip
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser["bundle_root"] = str(root)
    eager = parser.get_parsed_content("network_def")
    eager.load_state_dict(torch.load(models / "model.pt", map_location="cpu", weights_only=True))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(ts))(x), eager.eval()(x), atol=1e-5, rtol=1e-4)
    overrides = {"bundle_root": str(root), "dataset_dir": str(data), "models_dir": str(models)}
    for files, kind in (
        (train, "train"),
        (["inference.json"], "infer"),
        (["common.json", "inference.json", "evaluate.json"], "infer"),
    ):  # noqa: E501
        wf = ConfigWorkflow(config_file=configs(root, *files), workflow_type=kind, **overrides)
        wf.initialize()
        assert not wf.check_properties(), files


def test_mobilenet_zoo_checks(mobilenet_run, tmp_path):
    work, _ = mobilenet_run
    _zoo_checks(MOBILENET, ["common.json", "train_last.json"], work / "work" / "models", work / "data", tmp_path)


def _without_latency(table: str) -> list[list[str]]:
    """The ablation table's cells, its wall-clock latency column left out."""
    rows = [line.split("|") for line in table.splitlines()]
    column = next(row.index(" latency (ms) ") for row in rows if " latency (ms) " in row)
    return [row[:column] + row[column + 1 :] if len(row) > column else row for row in rows]


def test_iscf_ablation_resumes_after_kill_and_zoo_checks(tmp_path):
    stdout = run_command(plan_command(ISCF, "ablation.json", tmp_path / "work", tmp_path / "data", 2018)).stdout
    for row in ("| ISCF, 3 scale pairs | 64x64 |", "| ISCF, 1 scale pair |", "| skip concatenation (no ISCF) |"):
        assert row in stdout
    table = json.loads((tmp_path / "work" / "ablation.json").read_text())
    params = [table[k]["params"] for k in ("skip concatenation (no ISCF)", "ISCF, 1 scale pair", "ISCF, 3 scale pairs")]
    assert params == sorted(params) and params[0] < params[-1]
    assert all(0 <= v["test_dice"] <= 1 and v["gflops"] > 0 for v in table.values())
    models = tmp_path / "work" / "ISCF_3_scale_pairs" / "models"
    _zoo_checks(ISCF, ["common.json", "train.json"], models, tmp_path / "data", tmp_path)
    # killed while the second variant trains (its TensorBoard log is open), then run again: the same table
    resumed = tmp_path / "resumed"
    folders = ["ISCF_3_scale_pairs", "ISCF_2_scale_pairs", "ISCF_1_scale_pair", "skip_concatenation_no_ISCF"]
    names = [f"{step}/{folder}" for folder in folders for step in ("train", "evaluate")]
    command = plan_command(ISCF, "ablation.json", resumed, tmp_path / "data", 2018)
    killed_and_resumed(command, resumed, f"train/{folders[1]}", log_opened(resumed / folders[1] / "eval"), names)
    tables = [_without_latency((work / "ablation.md").read_text()) for work in (tmp_path / "work", resumed)]
    assert tables[0] == tables[1]
