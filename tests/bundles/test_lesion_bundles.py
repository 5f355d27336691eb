"""The two lesion-segmentation bundles (MobileNetV2 U-Net, ISCF transformer U-Net) end to end at tiny size."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow

from monai_skinattr.data import lesion_splits
from monai_skinattr.data.checks import read_2d
from monai_skinattr.metrics import isic_task1_score

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
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


def tiny(root: Path, config: str, work: Path, year: int, *extra: str) -> subprocess.CompletedProcess:
    return bundle(
        "run", "--config_file", str(root / "configs" / config), "--bundle_root", str(root),
        "--workdir", str(work / "work"), "--dataset_dir", str(work / "data"), "--make_synthetic", "true",
        "--synthetic", json.dumps({"n": 12, "size": [64, 80], "seed": 0, "year": year}),
        "--spatial_size", "[64, 64]", "--max_epochs", "1", "--batch_size", "4", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def mobilenet_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("mobilenet")
    return work, tiny(MOBILENET, "pipeline.json", work, 2016).stdout


def test_three_phases_table(mobilenet_run):
    work, stdout = mobilenet_run
    assert "| phase | lr | lowest val loss | IoU | Dice | ISIC thr. Jaccard |" in stdout
    for row in ("| encoder frozen | 0.001 |", "| stage 4 open | 0.0001 |", "| all layers open | 0.0001 |"):
        assert row in stdout
    assert (
        "| 4,771,585 | 2,223,872 |" in stdout and "| 6,452,929 | 542,528 |" in stdout and "| 6,995,457 | 0 |" in stdout
    )
    results = json.loads((work / "work" / "phases.json").read_text())
    assert list(results) == ["frozen", "last", "all"]


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


def _zoo_checks(root: Path, train: list[str], models: Path, data: Path, tmp_path: Path) -> None:
    bundle("verify_metadata", "--meta_file", str(root / "configs" / "metadata.json"),
           "--filepath", str(BUNDLES / "meta_schema.json"))  # fmt: skip
    bundle("verify_net_in_out", "network_def", "--meta_file", str(root / "configs" / "metadata.json"),
           "--config_file", str(root / "configs" / "inference.json"), "--bundle_root", str(root))  # fmt: skip
    ts = tmp_path / "model.ts"
    bundle("ckpt_export", "network_def", "--filepath", str(ts), "--ckpt_file", str(models / "model.pt"),
           "--meta_file", str(root / "configs" / "metadata.json"),
           "--config_file", str(root / "configs" / "inference.json"), "--bundle_root", str(root))  # fmt: skip
    assert ts.stat().st_size > 1000
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


def test_iscf_ablation_and_zoo_checks(tmp_path):
    result = tiny(ISCF, "ablation.json", tmp_path, 2018)
    for row in ("| ISCF, 3 scale pairs | 64x64 |", "| ISCF, 1 scale pair |", "| skip concatenation (no ISCF) |"):
        assert row in result.stdout
    table = json.loads((tmp_path / "work" / "ablation.json").read_text())
    params = [table[k]["params"] for k in ("skip concatenation (no ISCF)", "ISCF, 1 scale pair", "ISCF, 3 scale pairs")]
    assert params == sorted(params) and params[0] < params[-1]
    assert all(0 <= v["test_dice"] <= 1 and v["gflops"] > 0 for v in table.values())
    models = tmp_path / "work" / "ISCF_3_scale_pairs" / "models"
    _zoo_checks(ISCF, ["common.json", "train.json"], models, tmp_path / "data", tmp_path)
