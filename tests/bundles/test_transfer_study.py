"""The transfer bundle's encoder pretraining, and the study plan end to end at tiny size on the synthetic twins: killed
and resumed, it ends with the table of an uninterrupted run."""

import json
from pathlib import Path

import pytest
import torch

from monai_skinattr.apps.transfer import checkpoint_path, read_robustness
from monai_skinattr.bundles import bundle_dir
from monai_skinattr.networks import thesis_network
from monai_skinattr.runner import read_record
from tests.plan_kill import kill_during, run_command

ROOT = bundle_dir("transfer")
CONFIGS = ROOT / "configs"
UNET = {"features": [8, 16, 32, 64, 128]}


def pretrain_command(work: Path, *extra: str) -> list[str]:
    return ["-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "pretrain.json"),
            "--bundle_root", str(ROOT), "--logging_file", str(CONFIGS / "logging.conf"),
            "--imagefolder_dir", str(work / "imagefolder"), "--make_synthetic", "true",
            "--imagefolder_synthetic", json.dumps({"n": 4, "size": [40, 40], "classes": 3, "seed": 0}),
            "--pretrain_dir", str(work / "pretrain"), "--pretrain_curves_dir", str(work / "curves"),
            "--network_name", "unet", "--network_options", json.dumps(UNET), "--image_size", "32", "--batch_size", "6",
            "--num_workers", "0", *extra]  # fmt: skip


def test_advanced_pretraining_killed_resumes_to_the_same_encoders(tmp_path, monkeypatch):
    """The "advanced" scheme (the study test below pretrains with "simple") saves the requested encoders; killed after
    its first epoch, it resumes from ``last.pt`` and saves the encoders of an uninterrupted run, bit for bit."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    extra = ("--scheme", "advanced", "--max_epochs", "3", "--save_epochs", "[1, 3]")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_command(pretrain_command(whole, *extra))
    saved = sorted(p.name for p in (whole / "pretrain").glob("encoder_epoch*.pt"))
    assert saved == ["encoder_epoch000.pt", "encoder_epoch001.pt", "encoder_epoch003.pt"]
    assert not (whole / "pretrain" / "last.pt").exists()  # deleted once the run completed
    net = thesis_network("unet", out_channels=4, **UNET)
    net.encoder.load_state_dict(torch.load(checkpoint_path(whole / "pretrain", 3), weights_only=True))
    first = torch.load(checkpoint_path(whole / "pretrain", 0), weights_only=True)
    last = torch.load(checkpoint_path(whole / "pretrain", 3), weights_only=True)
    assert any(not torch.equal(first[k], last[k]) for k in first)  # pretraining moved the encoder

    kill_during(pretrain_command(killed, *extra), None, None, ready=(killed / "pretrain" / "last.pt").is_file)
    log = run_command(pretrain_command(killed, *extra)).stdout
    assert "resumed from" in log and "after epoch 1" in log
    for name in [*saved, "classifier_best.pt"]:
        a, b = (torch.load(d / "pretrain" / name, weights_only=True) for d in (whole, killed))
        a, b = a.get("model", a), b.get("model", b)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_online_pretraining_scores_every_save(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    target = tmp_path / "covidqu"
    run_command(pretrain_command(
        tmp_path, "--max_epochs", "2", "--save_epochs", "[1, 2]", "--online", "true", "--target_dataset", "covidqu",
        "--target_dir", str(target), "--target_synthetic_dir", str(target),
    ))  # fmt: skip
    scores = read_robustness(tmp_path / "pretrain")
    assert list(scores) == [0, 1, 2] and all(0.0 <= s <= 1.0 for s in scores.values())


def study_command(workdir: Path, data: Path) -> list[str]:
    """The plan config on top of ``common.json``: 1 dataset, 1 tiny network, 1 mode, encoders of epochs 0 and 1."""
    files = json.dumps([str(CONFIGS / "common.json"), str(CONFIGS / "study.json")])
    pretrain = {
        "imagefolder_dir": str(data / "imagefolder"), "make_synthetic": True, "image_size": 32, "batch_size": 6,
        "imagefolder_synthetic": {"n": 4, "size": [40, 40], "classes": 3, "seed": 0}, "num_workers": 0,
    }  # fmt: skip
    return ["-m", "monai.bundle", "run", "--config_file", files, "--bundle_root", str(ROOT),
            "--logging_file", str(CONFIGS / "logging.conf"), "--workdir", str(workdir), "--datasets", '["acdc"]',
            "--networks", '["unet"]', "--modes", '["decoder"]', "--save_epochs", "[1]", "--downstream_epochs", "1",
            "--repeats", "1", "--spatial_size", "[32, 32]", "--batch_size", "8", "--num_workers", "0",
            "--network_options", json.dumps(UNET), "--make_synthetic", "true",
            "--dataset_dirs", json.dumps({"acdc": str(data / "acdc")}),
            "--overrides#synthetic", json.dumps({"n": 5, "size": [48, 48, 6], "seed": 0}), "--schemes", '["simple"]',
            "--pretrain_overrides", json.dumps(pretrain)]  # fmt: skip


def test_study_killed_and_resumed_gives_the_same_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data, whole, killed = tmp_path / "data", tmp_path / "whole", tmp_path / "killed"
    expected = run_command(study_command(whole, data)).stdout
    runs = list(read_record(whole))
    assert runs == [
        "pretrain/unet/simple",
        "downstream/acdc/unet/decoder/random/run0/train", "downstream/acdc/unet/decoder/random/run0/evaluate",
        "robustness/acdc/unet/decoder/simple",
        "downstream/acdc/unet/decoder/simple/epoch001/run0/train",
        "downstream/acdc/unet/decoder/simple/epoch001/run0/evaluate",
    ]  # fmt: skip
    kill_during(study_command(killed, data), killed, runs[4])
    first = killed / "runs" / "acdc" / "unet" / "decoder" / "random" / "run0" / "models" / "model.pt"
    stamp = first.stat().st_mtime_ns
    log = run_command(study_command(killed, data)).stdout
    for name in runs[:4]:
        assert f"{name}: finished before with the same settings, skipped" in log, name
    assert f"{runs[4]}: resuming from its last checkpoint" in log
    encoders = killed / "pretrain" / "unet_simple"
    assert sorted(p.name for p in encoders.glob("encoder_epoch*.pt")) == ["encoder_epoch000.pt", "encoder_epoch001.pt"]
    first_state, last_state = (torch.load(checkpoint_path(encoders, e), weights_only=True) for e in (0, 1))
    thesis_network("unet", out_channels=4, **UNET).encoder.load_state_dict(last_state)
    assert any(not torch.equal(first_state[k], last_state[k]) for k in first_state)  # pretraining moved the encoder
    assert (encoders / "classifier_best.pt").is_file()
    assert first.stat().st_mtime_ns == stamp  # the finished runs did not run again
    assert all(entry["finished"] for entry in read_record(killed).values()) and list(read_record(killed)) == runs
    for name in ("tables_2_9_2_10.md", "tables_2_9_2_10.csv", "table_4_1.md", "table_4_1.csv", "table_4_1.json"):
        assert (killed / "tables" / name).read_text() == (whole / "tables" / name).read_text(), name
    for row in (killed / "tables" / "tables_2_9_2_10.md").read_text().splitlines()[-3:]:
        assert row in log and row in expected  # the printed table
    assert "| dataset | network | mode | scheme | best Dice | at epoch | worst / best |" in log
    assert "| acdc | unet | decoder | simple |" in log
    entry = json.loads((killed / "tables" / "table_4_1.json").read_text())["acdc/unet/decoder/simple"]
    assert entry["epochs"] == [0, 1] and len(entry["robustness"]) == 2
    best = max(entry["dice_mean"])
    for name, epoch in entry["chosen_epoch"].items():
        expected_tis = entry["dice_mean"][entry["epochs"].index(epoch)] / best if best else 0.0
        assert entry["tis"][name] == pytest.approx(expected_tis), name
    assert entry["chosen_epoch"]["no pretraining"] == 0 and entry["chosen_epoch"]["last checkpoint"] == 1
    assert (killed / "tables" / "dice_robustness_acdc_unet_decoder_simple.png").stat().st_size > 1000
