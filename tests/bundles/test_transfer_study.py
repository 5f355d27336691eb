"""The transfer bundle's encoder pretraining and the study runner end to end at tiny size on the synthetic twins."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monai_skinattr.apps.transfer import Study, checkpoint_path, read_robustness
from monai_skinattr.networks import thesis_network

ROOT = Path(__file__).resolve().parents[2] / "bundles" / "transfer"
CONFIGS = ROOT / "configs"
UNET = {"features": [8, 16, 32, 64, 128]}


def pretrain(work: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "pretrain.json"),
           "--bundle_root", str(ROOT), "--logging_file", str(CONFIGS / "logging.conf"),
           "--imagefolder_dir", str(work / "imagefolder"), "--make_synthetic", "true",
           "--imagefolder_synthetic", json.dumps({"n": 4, "size": [40, 40], "classes": 3, "seed": 0}),
           "--pretrain_dir", str(work / "pretrain"), "--pretrain_curves_dir", str(work / "curves"),
           "--network", "unet", "--network_options", json.dumps(UNET), "--image_size", "32", "--batch_size", "6",
           "--num_workers", "0", *extra]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.mark.parametrize("scheme", ["simple", "advanced"])
def test_pretraining_saves_the_requested_epochs(tmp_path, scheme):
    pretrain(tmp_path, "--scheme", scheme, "--max_epochs", "3", "--save_epochs", "[1, 3]")
    saved = sorted(p.name for p in (tmp_path / "pretrain").glob("encoder_epoch*.pt"))
    assert saved == ["encoder_epoch000.pt", "encoder_epoch001.pt", "encoder_epoch003.pt"]
    net = thesis_network("unet", out_channels=4, **UNET)
    net.encoder.load_state_dict(torch.load(checkpoint_path(tmp_path / "pretrain", 3), weights_only=True))
    first = torch.load(checkpoint_path(tmp_path / "pretrain", 0), weights_only=True)
    last = torch.load(checkpoint_path(tmp_path / "pretrain", 3), weights_only=True)
    assert any(not torch.equal(first[k], last[k]) for k in first)  # pretraining moved the encoder
    assert (tmp_path / "pretrain" / "classifier_best.pt").is_file()


def test_online_pretraining_scores_every_save(tmp_path):
    target = tmp_path / "covidqu"
    pretrain(
        tmp_path, "--max_epochs", "2", "--save_epochs", "[1, 2]", "--online", "true", "--target_dataset", "covidqu",
        "--target_dir", str(target), "--target_synthetic_dir", str(target),
    )  # fmt: skip
    scores = read_robustness(tmp_path / "pretrain")
    assert list(scores) == [0, 1, 2] and all(0.0 <= s <= 1.0 for s in scores.values())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    work = tmp_path_factory.mktemp("study")
    overrides = {
        "spatial_size": [32, 32], "batch_size": 8, "num_workers": 0, "network_options": UNET,
        "make_synthetic": True, "synthetic": {"n": 5, "size": [48, 48, 6], "seed": 0},
        "dataset_dir": str(work / "acdc"),
    }  # fmt: skip
    pretrain_overrides = {
        "imagefolder_dir": str(work / "imagefolder"), "make_synthetic": True, "image_size": 32, "batch_size": 6,
        "imagefolder_synthetic": {"n": 4, "size": [40, 40], "classes": 3, "seed": 0}, "num_workers": 0,
    }  # fmt: skip
    torch.set_num_threads(1)
    runner = Study(
        ROOT, work / "run", ["acdc"], ["unet"], save_epochs=[1], downstream_epochs=1, repeats=1,
        overrides=overrides, pretrain_overrides=pretrain_overrides,
    )  # fmt: skip
    runner.run()
    return runner


def test_study_tables(study):
    md = study.tables()
    assert "| dataset | network | mode | best Dice | at epoch | worst / best |" in md
    assert "| acdc | unet | full |" in md and "| acdc | unet | decoder |" in md
    table = json.loads((study.workdir / "tables" / "table_4_1.json").read_text())
    for mode in ("full", "decoder"):
        entry = table[f"acdc/unet/{mode}"]
        assert entry["epochs"] == [0, 1] and len(entry["robustness"]) == 2
        best = max(entry["dice_mean"])
        for name, epoch in entry["chosen_epoch"].items():
            expected = entry["dice_mean"][entry["epochs"].index(epoch)] / best if best else 0.0
            assert entry["tis"][name] == pytest.approx(expected), name
        assert entry["chosen_epoch"]["no pretraining"] == 0 and entry["chosen_epoch"]["last checkpoint"] == 1
    for mode in ("full", "decoder"):
        assert (study.workdir / "tables" / f"dice_robustness_acdc_unet_{mode}.png").stat().st_size > 1000


def test_study_resumes_without_rerunning(study):
    record = json.loads(study.record_path.read_text())
    assert len([k for k in record if k.startswith("downstream/")]) == 4  # 2 modes x 2 initialisations x 1 run
    model = study.workdir / "runs" / "acdc" / "unet" / "full" / "epoch001" / "run0" / "models" / "model.pt"
    stamp = model.stat().st_mtime_ns
    again = Study(study.bundle_root, study.workdir, ["acdc"], ["unet"], save_epochs=[1], downstream_epochs=1, repeats=1)
    again.run()  # everything is recorded: nothing runs (the record alone answers)
    assert model.stat().st_mtime_ns == stamp and json.loads(again.record_path.read_text()) == record
