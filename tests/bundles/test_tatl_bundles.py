"""End to end: the TATL bundles through ``python -m monai.bundle`` at tiny size (few images, 1 epoch, 64x64)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from isic_challenge_scoring import task2
from PIL import Image

from monai_skinattr.data import ATTRIBUTES, isic_datalist, synthetic
from monai_skinattr.data.checks import read_2d
from monai_skinattr.tatl import TATLCascade, load_probability_net

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
STAGE3 = BUNDLES / "tatl_attribute_segmenters"
TINY = {"n_train": 10, "n_val": 3, "size": [64, 64], "seed": 0}


def bundle(
    *args: str, cwd: Path | None = None, check: bool = True, prefix=(sys.executable, "-m")
) -> subprocess.CompletedProcess:
    cmd = [*prefix, "monai.bundle", *args]
    result = subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("tatl")
    result = bundle(
        "run",
        "--config_file", str(STAGE3 / "configs" / "pipeline.json"),
        "--bundle_root", str(STAGE3),
        "--workdir", str(work),
        "--synthetic", json.dumps(TINY),
        "--spatial_size", "[64, 64]",
        "--batch_size", "4",
        "--epochs", json.dumps({"lesion": 1, "union": 1, "attribute": 1}),
    )  # fmt: skip
    return work, result.stdout


def test_pipeline_writes_scorer_ready_masks(pipeline):
    work, _ = pipeline
    val = isic_datalist(work / "data" / "isic2018_synthetic", task=2, split="validation")
    out = work / "cascade" / "validation"
    assert len(val) == 3
    for entry in val:
        size = read_2d(entry["image"]).shape[:2]
        for name in ATTRIBUTES:
            mask = read_2d(out / "attributes" / f"{entry['id']}_attribute_{name}.png")
            assert mask.shape == size and set(np.unique(mask)) <= {0, 255}
        for sub, suffix in (("lesion", "segmentation"), ("union", "union"), ("overlays", "overlay")):
            assert (out / sub / f"{entry['id']}_{suffix}.png").is_file()
    assert len(list((out / "attributes").iterdir())) == 3 * len(ATTRIBUTES)


def test_pipeline_table_equals_official_scorer(pipeline, tmp_path):
    work, stdout = pipeline
    assert "| macro average |" in stdout and "| micro average (ISIC overall) |" in stdout
    rows = (work / "attribute_scores.csv").read_text().strip().splitlines()
    assert rows[0] == "attribute,jaccard,dice" and len(rows) == 1 + len(ATTRIBUTES) + 2
    scores = json.loads((work / "attribute_scores.json").read_text())
    gt = tmp_path / "gt"
    gt.mkdir()
    for entry in isic_datalist(work / "data" / "isic2018_synthetic", task=2, split="validation"):
        for name in ATTRIBUTES:
            shutil.copy(entry[name], gt)
    official = task2.score(gt, work / "cascade" / "validation" / "attributes")
    for name in ATTRIBUTES:
        assert scores[name]["jaccard"] == pytest.approx(official[name]["jaccard"], abs=1e-6)
    assert scores["overall"] == pytest.approx(official["overall"], abs=1e-6)


def test_checkpoints_of_every_stage(pipeline):
    work, _ = pipeline
    assert (work / "lesion" / "models" / "model.pt").is_file()
    for arch in ("unet", "linknet"):
        assert (work / "union" / "models" / arch / "model.pt").is_file()
        for name in ATTRIBUTES:
            assert (work / "attributes" / "models" / name / arch / "model.pt").is_file()
    assert len(list((work / "lesion" / "eval" / "lesions" / "training").glob("*_segmentation.png"))) == 10


def test_resume_from_checkpoint(pipeline, tmp_path):
    """Training started from a checkpoint with a zero learning rate keeps the checkpoint's weights."""
    work, _ = pipeline
    start = work / "lesion" / "models" / "model.pt"
    bundle(
        "run",
        "--config_file", str(BUNDLES / "tatl_lesion_segnet" / "configs" / "train.json"),
        "--bundle_root", str(tmp_path),
        "--dataset_dir", str(work / "data" / "isic2018_synthetic"),
        "--init_checkpoint", str(start),
        "--spatial_size", "[64, 64]",
        "--max_epochs", "1",
        "--learning_rate", "0.0",
    )  # fmt: skip
    before = torch.load(start, map_location="cpu", weights_only=True)
    after = torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    params = [k for k in before if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and all(torch.equal(before[k], after[k]) for k in params)


def test_torchscript_export_and_exported_cascade(pipeline, tmp_path):
    work, _ = pipeline
    ts = tmp_path / "lesion.ts"
    bundle(
        "ckpt_export", "network_def",
        "--filepath", str(ts),
        "--ckpt_file", str(work / "lesion" / "models" / "model.pt"),
        "--meta_file", str(BUNDLES / "tatl_lesion_segnet" / "configs" / "metadata.json"),
        "--config_file", str(BUNDLES / "tatl_lesion_segnet" / "configs" / "train.json"),
        "--bundle_root", str(tmp_path),
        "--dataset_dir", str(work / "data" / "isic2018_synthetic"),
    )  # fmt: skip
    exported = torch.jit.load(str(ts))
    eager = load_probability_net("unet", work / "lesion" / "models" / "model.pt")
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(torch.sigmoid(exported(x)), eager(x), atol=1e-5, rtol=0)

    def nets(script: bool):
        def load(archs, paths):
            net = load_probability_net(archs, paths)
            return torch.jit.script(net) if script else net

        archs = ["unet", "linknet"]
        attrs = {
            n: load(archs, [work / "attributes" / "models" / n / a / "model.pt" for a in archs]) for n in ATTRIBUTES
        }
        union = load(archs, [work / "union" / "models" / a / "model.pt" for a in archs])
        return load("unet", work / "lesion" / "models" / "model.pt"), union, attrs

    image = torch.from_numpy(read_2d(isic_datalist(work / "data" / "isic2018_synthetic", task=1)[0]["image"]))
    image = image.permute(2, 0, 1).float() / 255
    kwargs = {"lesion_size": (64, 64), "input_size": (64, 64)}
    eager_maps = TATLCascade(*nets(False), **kwargs)(image)
    script_maps = TATLCascade(*nets(True), **kwargs)(image)
    assert all(torch.equal(eager_maps[k], script_maps[k]) for k in eager_maps)


@pytest.mark.parametrize("name", ["tatl_lesion_segnet", "tatl_attribute_agnostic", "tatl_attribute_segmenters"])
def test_metadata_verifies(name):
    meta = BUNDLES / name / "configs" / "metadata.json"
    result = bundle("verify_metadata", "--meta_file", str(meta), "--filepath", str(BUNDLES / "meta_schema.json"))
    assert "metadata is verified with no error" in result.stdout + result.stderr


def test_verify_net_in_out(tmp_path):
    result = bundle(
        "verify_net_in_out", "network_def",
        "--meta_file", str(BUNDLES / "tatl_lesion_segnet" / "configs" / "metadata.json"),
        "--config_file", str(BUNDLES / "tatl_lesion_segnet" / "configs" / "train.json"),
        "--bundle_root", str(tmp_path),
        "--dataset_dir", str(tmp_path / "unused"),
    )  # fmt: skip
    assert "data shape of network is verified with no error" in result.stdout + result.stderr


def test_broken_dataset_fails_before_training(tmp_path):
    root = synthetic.make_isic(tmp_path / "isic", n=4, size=(32, 32), progress=False)
    (root / ".synthetic-isic-training.json").unlink()
    mask = root / "ISIC2018_Task1_Training_GroundTruth" / "ISIC_0000002_segmentation.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    result = bundle(
        "run",
        "--config_file", str(BUNDLES / "tatl_lesion_segnet" / "configs" / "train.json"),
        "--bundle_root", str(tmp_path / "run"),
        "--dataset_dir", str(root),
        "--num_folds", "2",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "ISIC_0000002_segmentation.png: mask size (10, 10) differs from image size (32, 32)" in result.stderr
    assert not (tmp_path / "run" / "models").exists()


@pytest.mark.parametrize("name", ["tatl_lesion_segnet", "tatl_attribute_segmenters"])
def test_multi_gpu_config_on_cpu_with_gloo(pipeline, tmp_path, name):
    work, _ = pipeline
    configs = BUNDLES / name / "configs"
    stage3 = []
    if name == "tatl_attribute_segmenters":
        stage3 = [
            "--init_checkpoint", str(work / "union" / "models" / "unet" / "model.pt"),
            "--freeze_encoder", "true",
            "--lesion_dir", str(work / "lesion" / "eval" / "lesions" / "training"),
        ]  # fmt: skip
    bundle(
        "run",
        "--config_file", json.dumps([str(configs / "train.json"), str(configs / "multi_gpu_train.json")]),
        "--bundle_root", str(tmp_path),
        "--dataset_dir", str(work / "data" / "isic2018_synthetic"),
        "--spatial_size", "[64, 64]",
        "--max_epochs", "1",
        *stage3,
        prefix=(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533", "-m"),
    )  # fmt: skip
    saved = list((tmp_path / "models").rglob("model.pt"))
    assert len(saved) == 1
    if stage3:  # frozen encoder: identical to the stage-2 checkpoint it started from
        start = torch.load(work / "union" / "models" / "unet" / "model.pt", map_location="cpu", weights_only=True)
        end = torch.load(saved[0], map_location="cpu", weights_only=True)
        assert all(torch.equal(start[k], end[k]) for k in start if k.startswith("encoder."))
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith("decoder."))


@pytest.mark.parametrize(
    "name, checkpoint, overrides",
    [
        ("tatl_attribute_agnostic", "union/models/linknet/model.pt", ["--arch", "linknet"]),
        ("tatl_attribute_segmenters", "attributes/models/streaks/unet/model.pt", ["--arch", "unet"]),
    ],
)
def test_ckpt_export_of_stage_2_and_3(pipeline, tmp_path, name, checkpoint, overrides):
    work, _ = pipeline
    ts = tmp_path / "net.ts"
    bundle(
        "ckpt_export", "network_def",
        "--filepath", str(ts),
        "--ckpt_file", str(work / checkpoint),
        "--meta_file", str(BUNDLES / name / "configs" / "metadata.json"),
        "--config_file", str(BUNDLES / name / "configs" / "train.json"),
        "--bundle_root", str(tmp_path),
        *overrides,
    )  # fmt: skip
    arch = overrides[1]
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(
        torch.sigmoid(torch.jit.load(str(ts))(x)), load_probability_net(arch, work / checkpoint)(x)
    )


def test_evaluate_and_union_inference_configs(pipeline, tmp_path):
    work, _ = pipeline
    data = str(work / "data" / "isic2018_synthetic")
    configs = BUNDLES / "tatl_lesion_segnet" / "configs"
    bundle(
        "run",
        "--config_file", json.dumps([str(configs / "train.json"), str(configs / "evaluate.json")]),
        "--bundle_root", str(tmp_path / "eval"),
        "--ckpt_dir", str(work / "lesion" / "models"),
        "--dataset_dir", data,
        "--spatial_size", "[64, 64]",
    )  # fmt: skip
    rows = (tmp_path / "eval" / "eval" / "metrics.csv").read_text().splitlines()
    name, value = rows[0].split(",")
    assert name == "val_jaccard" and 0.0 <= float(value) <= 1.0
    bundle(
        "run",
        "--config_file", str(BUNDLES / "tatl_attribute_agnostic" / "configs" / "inference.json"),
        "--bundle_root", str(tmp_path / "union"),
        "--ckpt_dir", str(work / "union" / "models"),
        "--lesion_checkpoint", str(work / "lesion" / "models" / "model.pt"),
        "--dataset_dir", data,
        "--lesion_size", "[64, 64]",
        "--spatial_size", "[64, 64]",
    )  # fmt: skip
    union = sorted((tmp_path / "union" / "eval" / "union" / "validation" / "union").glob("*_union.png"))
    assert (
        len(union) == 3
        and read_2d(union[0]).shape == read_2d(isic_datalist(data, split="validation")[0]["image"]).shape[:2]
    )
