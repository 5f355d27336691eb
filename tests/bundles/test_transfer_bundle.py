"""The transfer bundle's downstream segmentation end to end at tiny size: ACDC (decoder on a pretrained encoder) and
IDRiD (full training, full-image scoring) through ``python -m monai.bundle run``, COVID-QU-Ex and the zoo checks in
process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out
from monai.transforms import Compose
from PIL import Image

from monai_skinattr.apps.transfer import preprocessing
from monai_skinattr.bundles import bundle_dir
from monai_skinattr.config import run_bundle
from monai_skinattr.networks import thesis_network
from monai_skinattr.utils.io import read_metrics_csv

ROOT = bundle_dir("transfer")
CONFIGS = ROOT / "configs"
TINY = {"spatial_size": [32, 32], "batch_size": 8, "num_workers": 0}
NETWORKS = {
    "unet": {"features": [8, 16, 32, 64, 128]},
    "resnet50_attention": {"decoder_channels": [16, 8, 8, 8, 8]},
    "swin": {"embed_dim": 12, "num_heads": [1, 1, 1, 1]},
}
SYNTHETIC = {
    "acdc": {"n": 5, "size": [48, 48, 6], "seed": 0},
    "covidqu": {"n": 12, "size": [64, 64], "seed": 0},
    "idrid": {"n": 2, "size": [80, 160], "seed": 0},
}
#: the thesis' IDRiD geometry divided by 7: 160x320 images, windows of 64 at stride 16 (119), test tiles of 32 (50)
IDRID = {"idrid_size": [160, 320], "idrid_window": 64, "idrid_stride": 16}


def settings(work: Path, dataset: str, network: str, **extra) -> dict:
    """The overrides of one tiny run (what the study runner passes, plus the tiny sizes)."""
    return {
        **TINY,
        "dataset_name": dataset,
        "network_name": network,
        "network_options": NETWORKS[network],
        "dataset_dir": str(work / "data"),
        "make_synthetic": True,
        "synthetic": SYNTHETIC[dataset],
        "models_dir": str(work / "models"),
        "output_dir": str(work / "eval"),
        **extra,
    }


def bundle(configs: list[str], overrides: dict) -> subprocess.CompletedProcess:
    files = json.dumps([str(CONFIGS / name) for name in configs])
    args = [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides.items()]
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, "--bundle_root", str(ROOT),
           "--logging_file", str(CONFIGS / "logging.conf"), *args]  # fmt: skip
    # one thread: tiny networks gain nothing from two, and two threads thrash on a busy 2-core machine
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks in this process too run on one thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_and_evaluate(overrides: dict) -> str:
    """One training epoch and the test scoring; returns the training log."""
    log = bundle(["common.json", "train.json"], {**overrides, "max_epochs": 1}).stdout
    bundle(["common.json", "inference.json", "evaluate.json"], overrides)
    return log


@pytest.fixture(scope="module")
def acdc(tmp_path_factory):
    work = tmp_path_factory.mktemp("transfer_acdc")
    torch.manual_seed(1)
    encoder = thesis_network("unet", out_channels=4, **NETWORKS["unet"]).encoder
    torch.save(encoder.state_dict(), work / "encoder_epoch005.pt")
    overrides = settings(work, "acdc", "unet", mode="decoder", init_checkpoint=str(work / "encoder_epoch005.pt"))
    train_and_evaluate(overrides)
    return work, overrides


@pytest.fixture(scope="module")
def idrid(tmp_path_factory):
    work = tmp_path_factory.mktemp("transfer_idrid")
    overrides = settings(work, "idrid", "resnet50_attention", mode="full", init_checkpoint="", batch_size=24, **IDRID)
    return work, overrides, train_and_evaluate(overrides)


def test_decoder_mode_keeps_the_pretrained_encoder(acdc):
    work, _ = acdc
    trained = torch.load(work / "models" / "model.pt", weights_only=True)
    pretrained = torch.load(work / "encoder_epoch005.pt", weights_only=True)
    for key, value in pretrained.items():
        assert torch.equal(trained[f"encoder.{key}"], value), key  # weights and BatchNorm statistics
    assert not (work / "models" / "last.pt").exists()  # the finished run left only its best model
    lines = (work / "eval" / "loss_curves.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,val_loss,val_dice" and lines[1].startswith("1,") and len(lines) == 2


def test_acdc_test_metrics_per_class_and_pooled(acdc):
    work, overrides = acdc
    saved = read_metrics_csv(work / "eval" / "test")
    classes = ("RV", "MYO", "LV")
    assert set(saved) == {
        f"test_{m}{c}" for m in ("dice", "jaccard", "hd95") for c in ("", *(f"_{c}" for c in classes))
    }
    # the thesis' Dice: pixels of all test slices pooled per class, then averaged over RV, MYO, LV
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / n) for n in ("common.json", "inference.json", "evaluate.json")])
    parser.update({**overrides, "bundle_root": str(ROOT)})
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(work / "models" / "model.pt", weights_only=True))
    net.eval()
    counts = np.zeros((4, 3))  # TP, FP, FN per class
    transform = Compose(preprocessing("acdc", "eval", TINY["spatial_size"]))
    for frame in parser.get_parsed_content("datalist"):
        slices = transform(frame)
        with torch.no_grad():
            pred = net(torch.stack([s["image"].as_tensor() for s in slices])).argmax(1).numpy()
        truth = torch.stack([s["label"].as_tensor()[0] for s in slices]).numpy()
        for c in range(4):
            counts[c] += [
                ((pred == c) & (truth == c)).sum(),
                ((pred == c) & (truth != c)).sum(),
                ((pred != c) & (truth == c)).sum(),
            ]
    dice = {}
    for c, name in enumerate(classes, start=1):
        tp, fp, fn = counts[c]
        dice[name] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        assert saved[f"test_dice_{name}"] == pytest.approx(dice[name], abs=1e-6)
    assert saved["test_dice"] == pytest.approx(np.nanmean(list(dice.values())), abs=1e-6)
    assert all(0 <= saved[f"test_jaccard{c}"] <= 1 for c in ("", "_RV", "_MYO", "_LV"))


def test_idrid_scored_on_the_full_image_from_50_tiles(idrid):
    work, overrides, log = idrid
    assert "Iter: 5/5 " in log and "Iter: 6/" not in log  # one training image (the other validates): 119 windows
    saved = read_metrics_csv(work / "eval" / "test")
    assert set(saved) == {"test_dice", "test_jaccard", "test_hd95"} and 0 <= saved["test_dice"] <= 1
    assert (work / "eval" / "loss_curves.csv").read_text().startswith("epoch,train_loss,val_loss,val_dice\n1,")
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / n) for n in ("common.json", "inference.json", "evaluate.json")])
    parser.update({**overrides, "bundle_root": str(ROOT)})
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(work / "models" / "model.pt", weights_only=True))
    net.eval()
    windows = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        windows.append(x.shape[0])
        assert x.shape[-2:] == (32, 32)
        return net(x)

    transform, inferer = parser.get_parsed_content("preprocessing"), parser.get_parsed_content("inferer")
    tp = fp = fn = 0
    for n, entry in enumerate(parser.get_parsed_content("datalist"), start=1):
        item = transform(entry)
        with torch.no_grad():
            pred = inferer(item["image"][None].as_tensor(), counted)
        assert pred.shape == (1, 1, 160, 320) and sum(windows) == 50 * n  # the whole image, from 50 tiles
        mask, truth = (torch.sigmoid(pred[0, 0]) >= 0.5).numpy(), item["label"][0].numpy() > 0
        tp, fp, fn = tp + (mask & truth).sum(), fp + (mask & ~truth).sum(), fn + (~mask & truth).sum()
    assert saved["test_dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0, abs=1e-6)


def test_covidqu_swin_in_process_and_masks_at_original_size(tmp_path):
    overrides = settings(tmp_path, "covidqu", "swin", batch_size=4)
    run_bundle(ROOT, ["common.json", "train.json"], **overrides, max_epochs=1)
    run_bundle(ROOT, ["common.json", "inference.json", "evaluate.json"], **overrides)
    saved = read_metrics_csv(tmp_path / "eval" / "test")
    assert set(saved) == {"test_dice", "test_jaccard", "test_hd95"} and 0 <= saved["test_dice"] <= 1
    run_bundle(ROOT, ["inference.json"], **{k: v for k, v in overrides.items() if k != "synthetic"})
    masks = sorted((tmp_path / "eval" / "predictions").glob("*_mask.png"))
    assert len(masks) == 12  # every test image, healthy ones included
    for path in masks:
        mask = np.asarray(Image.open(path))
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}


def test_zoo_checks(acdc, tmp_path):
    work, overrides = acdc
    meta = str(CONFIGS / "metadata.json")
    verify_metadata(meta_file=meta, filepath=str(ROOT.parent / "meta_schema.json"))
    infer = str(CONFIGS / "inference.json")
    verify_net_in_out(net_id="network_def", meta_file=meta, config_file=infer, bundle_root=str(ROOT))
    ts = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts), ckpt_file=str(work / "models" / "model.pt"), meta_file=meta,
                config_file=infer, bundle_root=str(ROOT), network_options=NETWORKS["unet"])  # fmt: skip
    assert torch.jit.load(str(ts))(torch.rand(1, 3, 32, 32)).shape == (1, 4, 32, 32)
    common = {
        "bundle_root": str(ROOT),
        "dataset_dir": str(work / "data"),
        "models_dir": str(work / "models"),
        "output_dir": str(tmp_path / "eval"),
        "num_workers": 0,
    }
    for files, kind in (
        (["common.json", "train.json"], "train"),
        (["inference.json"], "infer"),
        (["common.json", "inference.json", "evaluate.json"], "infer"),
    ):
        wf = ConfigWorkflow(config_file=[str(CONFIGS / f) for f in files], workflow_type=kind, **common)
        wf.initialize()
        assert not wf.check_properties(), files
    # the ACDC inference of a whole frame: slice by slice, back to the frame's own geometry
    keep = ("dataset_dir", "models_dir", "output_dir", "network_options", "spatial_size")
    run_bundle(ROOT, ["inference.json"], **{k: v for k, v in overrides.items() if k in keep})
    saved = sorted((work / "eval" / "predictions").glob("*_seg.nii.gz"))
    assert len(saved) == 10
    frame = nib.load(saved[0])
    source = nib.load(next((work / "data" / "testing").rglob(saved[0].name.replace("_seg", ""))))
    assert frame.shape == source.shape and np.allclose(frame.affine, source.affine)
    assert set(np.unique(np.asarray(frame.dataobj))) <= {0, 1, 2, 3}
