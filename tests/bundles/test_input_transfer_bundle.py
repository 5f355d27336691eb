"""The deep-input-transfer bundle end to end at tiny size: the plan, Table 1, resume after a kill, zoo checks."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

from monai_skinattr.apps.input_transfer import prepare_splits
from monai_skinattr.bundles import META_SCHEMA, bundle_dir
from monai_skinattr.data.checks import read_2d
from monai_skinattr.runner import read_record
from tests.plan_kill import kill_during, run_command

ROOT = bundle_dir("input_transfer")
RUNS = [
    "segmenter",
    "perturb_gp_ts",
    "perturb_gp_t",
    "translator_gp_ts",
    "translator_gp_t",
    "translator_e2e",
    "assemble",
    "evaluate",
    "table1",
]
TINY = {
    "--spatial_size": "[64, 64]",
    "--batch_size": "4",
    "--segmenter_features": "[8, 16, 32, 64, 128]",
    "--translator_blocks": "[2, 2]",
    "--translator_bottleneck": "2",
    "--translator_growth": "4",
    "--translator_first_channels": "8",
    "--iterations": "5",
}


def bundle(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def pipeline_args(work: Path, dataset: str, size: list[int], n: int = 12, translator_epochs: int = 1) -> list[str]:
    """The README's plan command (common.json + pipeline.json) at tiny size on ``n`` photos, all under ``work``: one
    epoch of the segmenter, ``translator_epochs`` of each translator."""
    configs = str([str(ROOT / "configs" / name) for name in ("common.json", "pipeline.json")])
    return [
        "-m", "monai.bundle", "run", "--config_file", configs, "--bundle_root", str(ROOT),
        "--logging_file", str(ROOT / "configs" / "logging.conf"),
        "--models_dir", str(work / "models"), "--output_dir", str(work / "eval"),
        "--dataset_name", dataset, "--dataset_dir", str(work / "data"), "--make_synthetic", "true",
        "--synthetic", json.dumps({"n": n, "size": size, "seed": 0}),
        "--epochs", json.dumps({"segmenter": 1, "translator": translator_epochs}),
        *[x for kv in TINY.items() for x in kv],
    ]  # fmt: skip


def pipeline(
    work: Path, dataset: str, size: list[int], n: int = 12, translator_epochs: int = 1
) -> subprocess.CompletedProcess:
    return run_command(pipeline_args(work, dataset, size, n, translator_epochs))


@pytest.fixture(scope="module")
def isic_run(tmp_path_factory):
    """The plan on ISIC, translators trained 2 epochs (a run killed after the first resumes from its checkpoint)."""
    work = tmp_path_factory.mktemp("input_transfer")
    return work, pipeline(work, "isic2017", [64, 80], translator_epochs=2)


def test_pipeline_plan_writes_table1_and_resumes_after_a_kill(isic_run, tmp_path):
    work, result = isic_run
    test = prepare_splits("isic2017", work / "data", "", make_synthetic=False)["test"]
    rows = ["| ORIG |", "| Oracle (GP with the test ground truth) |", "| GP_T |", "| GP_Ts |"]
    rows.append("| Pre-processor without GP |")
    for row in rows:
        assert row in result.stdout
    assert (
        "| variant | Dice | FPR | FNR | images |" in result.stdout and "SSIM(GP, GP_Ts) over 12 images" in result.stdout
    )
    table = json.loads((work / "eval" / "table1" / "table1.json").read_text())
    assert len(table["variants"]) == 5
    for scores in table["variants"].values():
        dice = np.asarray(scores["per_image_dice"])
        assert dice.size == len(test) == 12 and ((dice >= 0) & (dice <= 1)).all()
        assert scores["dice"]["mean"] == pytest.approx(dice.mean())
        assert scores["dice"]["se"] == pytest.approx(dice.std(ddof=1) / np.sqrt(dice.size))
    assert (work / "eval" / "table1" / "table1_dice_density.png").stat().st_size > 1000
    models = work / "models"
    for name in ("segmenter.pt", "translator_gp_ts.pt", "translator_gp_t.pt", "translator_e2e.pt", "model.pt"):
        assert (models / name).is_file(), name
    for gamma in ("1.0", "0.1"):
        assert len(list((models / f"perturbed_gamma{gamma}").glob("*.npy"))) == 10  # training split: 12 less 2
    record = read_record(models)
    assert list(record) == RUNS and all(entry["finished"] for entry in record.values())

    # the same command killed while training the first translator, after its first epoch's checkpoint, then run
    # again: the translator carries on from that checkpoint and Table 1 is the uninterrupted one
    other = tmp_path / "killed"
    args = pipeline_args(other, "isic2017", [64, 80], translator_epochs=2)
    last = other / "models" / "last_translator_gp_ts.pt"
    kill_during(args, other / "models", "translator_gp_ts", ready=last.is_file)
    finished = [name for name, entry in read_record(other / "models").items() if entry["finished"]]
    assert finished == RUNS[:3]
    kept = sorted((other / "models").glob("**/*.npy")) + [other / "models" / "segmenter.pt"]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    resumed = pipeline(other, "isic2017", [64, 80], translator_epochs=2)
    assert resumed.stdout.count("finished before with the same settings, skipped") == len(finished)
    assert "[4/9] translator_gp_ts: resuming from its last checkpoint" in resumed.stdout
    assert not list((other / "models").glob("last_*.pt"))  # a finished run leaves no training state behind
    assert {p: p.stat().st_mtime_ns for p in kept} == stamps  # the finished runs' outputs are not rewritten
    record = read_record(other / "models")
    assert list(record) == RUNS and all(entry["finished"] for entry in record.values())
    tables = [
        (w / "eval" / "table1" / "table1.md").read_text().replace(str(w / "data"), "<data>") for w in (work, other)
    ]
    assert tables[0] == tables[1]


def test_test_masks_at_original_size_and_metrics(isic_run):
    work, _ = isic_run
    test = prepare_splits("isic2017", work / "data", "", make_synthetic=False)["test"]
    out = work / "eval" / "test"
    dice = []
    for entry in test:
        mask, truth = read_2d(out / "masks" / f"{entry['id']}_segmentation.png"), read_2d(entry["label"]) > 0
        assert mask.shape == truth.shape == (64, 80) and set(np.unique(mask)) <= {0, 255}
        pred = mask > 0
        total = pred.sum() + truth.sum()
        dice.append(2 * (pred & truth).sum() / total if total else 1.0)
    saved = dict(line.split(",") for line in (out / "metrics.csv").read_text().splitlines())
    assert float(saved["test_dice"]) == pytest.approx(np.mean(dice), abs=1e-6)
    assert 0 <= float(saved["test_fpr"]) <= 1 and 0 <= float(saved["test_fnr"]) <= 1


def test_zoo_checks_and_torchscript(isic_run, tmp_path):
    work, _ = isic_run
    meta = str(ROOT / "configs" / "metadata.json")
    verify_metadata(meta_file=meta, filepath=str(META_SCHEMA))  # in process, as `python -m monai.bundle` calls it
    infer = str(ROOT / "configs" / "inference.json")
    verify_net_in_out("network_def", meta, infer, bundle_root=str(ROOT))
    ts = tmp_path / "model.ts"
    tiny = {k[2:]: json.loads(v) for k, v in TINY.items() if k not in ("--iterations", "--batch_size")}
    ckpt_export("network_def", str(ts), ckpt_file=str(work / "models" / "model.pt"), meta_file=meta,
                config_file=infer, bundle_root=str(ROOT), **tiny)  # fmt: skip
    scripted = torch.jit.load(str(ts))
    x = torch.rand(1, 3, 64, 64)
    assert scripted(x).shape == (1, 2, 64, 64)
    scripted.return_translation = True
    assert scripted(x).shape == (1, 3, 64, 64)  # the translator alone: the perturbed-image estimate
    overrides = {"bundle_root": str(ROOT), "dataset_dir": str(work / "data"), "models_dir": str(work / "models")}
    cfg = lambda *names: [str(ROOT / "configs" / n) for n in names]  # noqa: E731
    for files, kind in (
        (cfg("common.json", "train_segmenter.json"), "train"),
        (cfg("common.json", "train_translator.json"), "train"),
        (cfg("common.json", "train_preprocessor.json"), "train"),
        (cfg("inference.json"), "infer"),
        (cfg("common.json", "inference.json", "evaluate.json"), "infer"),
    ):
        wf = ConfigWorkflow(
            config_file=files, workflow_type=kind, **overrides, **{"segmenter_features": [8, 16, 32, 64, 128]}
        )
        wf.initialize()
        assert not wf.check_properties(), files


@pytest.mark.parametrize("dataset, channels", [("shenzhen", 1), ("cvc_colondb", 3)])
def test_other_layouts_by_config(tmp_path, dataset, channels):
    result = pipeline(tmp_path, dataset, [64, 64], n=6)
    assert "| GP_Ts |" in result.stdout
    paper = {"shenzhen": "LUNG (Shenzhen chest X-ray)", "cvc_colondb": "COLON (CVC-ColonDB)"}[dataset]
    assert f"Table 1 on {paper} test split" in result.stdout
    state = torch.load(tmp_path / "models" / "segmenter.pt", weights_only=True)
    assert next(iter(state.values())).shape[1] == channels  # the first convolution reads `channels` channels
