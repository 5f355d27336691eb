"""The TATL bundle end to end through ``python -m monai.bundle`` at tiny size (few images, 1 epoch, 64x64)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from isic_challenge_scoring import task2
from monai.bundle import ConfigWorkflow, verify_metadata, verify_net_in_out

from monai_skinattr.apps.tatl import split_datalists
from monai_skinattr.bundles import META_SCHEMA, bundle_dir
from monai_skinattr.data import ATTRIBUTES, isic_datalist, synthetic
from monai_skinattr.data.checks import read_2d
from monai_skinattr.runner import read_record
from tests.plan_kill import kill_during

BUNDLE = bundle_dir("tatl")
CONFIGS = BUNDLE / "configs"
TINY = {"n": 15, "size": [64, 64], "seed": 0}
ONE_EPOCH = json.dumps({"lesion": 1, "union": 1, "attribute": 1})


def bundle(*args: str, check: bool = True, prefix=(sys.executable, "-m"), cwd=None) -> subprocess.CompletedProcess:
    cmd = [*prefix, "monai.bundle", *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def config(*names: str) -> str:
    return json.dumps([str(CONFIGS / n) for n in names])


def pipeline(work: Path, data: Path, *extra: str, synthetic_params=TINY, root=BUNDLE, cwd=None):
    return bundle(*pipeline_args(work, data, *extra, synthetic_params=synthetic_params, root=root), cwd=cwd)


def pipeline_args(work: Path, data: Path, *extra: str, synthetic_params=TINY, root=BUNDLE) -> list[str]:
    """The README's main job (``root`` the bundle folder, as the user typed it) at tiny size."""
    return [
        "run",
        "--config_file", str([f"{root}/configs/common.json", f"{root}/configs/pipeline.json"]),
        "--bundle_root", str(root),
        "--workdir", str(work),
        "--dataset_dir", str(data),
        "--make_synthetic", "true",
        "--synthetic", json.dumps(synthetic_params),
        "--spatial_size", "[64, 64]",
        "--epochs", ONE_EPOCH,
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tatl_run(tmp_path_factory):
    """The README's main job as a user runs it after ``pip install``: the bundle copied into a folder of theirs by
    ``python -m monai_skinattr.bundles init`` and run from there (outside the source tree, so in CI, which installs
    the package non-editable, this is the installed package)."""
    root = tmp_path_factory.mktemp("tatl")
    init = [sys.executable, "-m", "monai_skinattr.bundles", "init", "tatl", "bundles/tatl"]
    copied = subprocess.run(init, cwd=root, check=True, capture_output=True, text=True)
    assert "now holds bundle 'tatl'" in copied.stdout
    result = pipeline(root / "work", root / "data", root="bundles/tatl", cwd=root)
    return root / "work" / "tatl" / "TATL_wo_ImageNet" / "fold0", root / "data", result.stdout


def test_main_job_prints_a_labelled_table(tatl_run):
    _, _, stdout = tatl_run
    assert "**TATL** (jaccard, mean ± std over 1 fold(s))" in stdout
    assert "| attribute | TATL w/o ImageNet |" in stdout and "| micro_average |" in stdout


def test_finished_pipeline_is_not_retrained(tatl_run):
    """The main job run again: every stage is recorded finished, so nothing is retrained or rewritten."""
    run, data, stdout = tatl_run
    files = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    again = pipeline(run.parents[2], data, root="bundles/tatl", cwd=run.parents[3])
    inner = 2 * 5  # the 5 inner Segment-Nets (lesion_source inner_folds) and their held-out lesions
    assert again.stdout.count("with the same settings, skipped") == 1 + 1 + inner + 2 + 2 * len(ATTRIBUTES) + 1 + 1
    assert "| micro_average |" in again.stdout and {p: p.stat().st_mtime_ns for p in files} == files


def test_main_job_killed_mid_plan_ends_with_the_same_table(tatl_run, tmp_path):
    """SIGKILL while a stage-3 run is under way, the same command again: the runs recorded finished are skipped,
    the killed one and those after it run, and the table is the uninterrupted run's to the last digit."""
    run, data, _ = tatl_run
    work = tmp_path / "work"
    killed = "TATL_wo_ImageNet/fold0/attribute/negative_network/unet"
    kill_during(["-m", "monai.bundle", *pipeline_args(work, data)], work / "tatl", killed)
    resumed = pipeline(work, data)
    assert resumed.stdout.count("with the same settings, skipped") == 1 + 1 + 2 * 5 + 2 + 2 * 2
    assert f"{killed}: resuming from its last checkpoint" in resumed.stdout
    assert all(entry["finished"] for entry in read_record(work / "tatl").values())
    assert (work / "tatl" / "table.md").read_text() == (run.parents[1] / "table.md").read_text()


def test_figure6_draws_the_main_jobs_loss_curves_without_training(tatl_run):
    """``--experiment figure6`` after the README's main job: the same runs, all finished with the same settings, so
    nothing trains; the table holds each target segmenter's curve (``eval/curves``), the figure a panel each."""
    from monai_skinattr.apps.tatl import experiment_plan, read_loss_curves

    run, _, _ = tatl_run
    root = run.parents[3]
    record = (root / "work" / "tatl" / "runs.json").read_text()
    result = pipeline(root / "work", root / "data", "--experiment", "figure6", root="bundles/tatl", cwd=root)
    assert "running" not in result.stdout and (root / "work" / "tatl" / "runs.json").read_text() == record
    assert "**Figure 6: training and validation loss of the target segmenters**" in result.stdout
    summary = json.loads((root / "work" / "figure6" / "table.json").read_text())
    assert sorted(summary) == sorted(ATTRIBUTES) and all(sorted(v) == ["linknet", "unet"] for v in summary.values())
    for attribute, shapes in summary.items():
        for arch, row in shapes.items():
            curve = read_loss_curves(run / "eval" / "curves" / "attributes" / attribute / arch / "loss_curves.csv")
            assert curve["epoch"] == [1.0] and 0 < curve["val_loss"][0] <= 1  # one epoch; TATL's loss is in [0, 1]
            assert row["training loss (last epoch)"][0] == pytest.approx(curve["train_loss"][0], abs=1e-6)
            assert row["validation loss (best)"][0] == pytest.approx(curve["val_loss"][0], abs=1e-6)
    assert (run / "eval" / "curves" / "lesion" / "loss_curves.csv").is_file()  # every stage records its curves
    assert (root / "work" / "figure6" / "figure.png").stat().st_size > 10_000
    # other settings would train into the tatl experiment's folders: refused before anything runs
    with pytest.raises(ValueError, match="'figure6' draws from the runs of --experiment tatl in .* 26 of them"):
        experiment_plan(
            "figure6", root / "bundles" / "tatl", root / "work", [0], overrides={"dataset_dir": str(root / "data")}
        )


def _train_command(out: Path, data: Path) -> list[str]:
    return [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", config("common.json", "train_attribute.json"),
        "--bundle_root", str(BUNDLE), "--dataset_dir", str(data), "--models_dir", str(out / "models"),
        "--output_dir", str(out / "eval"), "--attribute", "pigment_network", "--from_union", "false",
        "--lesion_source", "ground_truth", "--spatial_size", "[64, 64]", "--lesion_size", "[64, 64]",
        "--max_epochs", "3", "--batch_size", "2",
    ]  # fmt: skip


def _metrics(log: str) -> list[str]:
    return re.findall(r"Epoch\[\d\] Metrics -- .*|best value: .*", log)


def test_training_killed_mid_epoch_resumes_to_the_same_result(tatl_run, tmp_path):
    """SIGKILL in the middle of epoch 2, the same command again: it resumes after epoch 1 and ends with the
    metrics and best weights of an uninterrupted run of the same seed; before the kill, its epoch 1 repeated the
    uninterrupted run's exactly (same seed, same numbers)."""
    _, data, _ = tatl_run
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    ckpt = Path("models/attributes/pigment_network/unet")
    whole = subprocess.run(_train_command(tmp_path / "a", data), capture_output=True, text=True, env=env, check=True)
    killed = subprocess.Popen(
        _train_command(tmp_path / "b", data), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    log = ""
    while "Epoch: 2/3, Iter: 2/" not in log and killed.poll() is None:
        log += killed.stdout.readline()
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    assert _metrics(log) == _metrics(whole.stdout)[:2]
    state = torch.load(tmp_path / "b" / ckpt / "last.pt", weights_only=True)
    assert state["trainer"]["iteration"] == state["trainer"]["epoch_length"]  # saved after epoch 1, killed in 2
    resumed = subprocess.run(_train_command(tmp_path / "b", data), capture_output=True, text=True, env=env, check=True)
    assert "resumed from" in resumed.stdout and "after epoch 1" in resumed.stdout
    assert _metrics(resumed.stdout) == _metrics(whole.stdout)[2:] and len(_metrics(whole.stdout)) == 6
    best = [torch.load(tmp_path / r / ckpt / "model.pt", weights_only=True) for r in "ab"]
    assert all(torch.equal(v, best[1][k]) for k, v in best[0].items())
    assert not (tmp_path / "b" / ckpt / "last.pt").exists()


def test_masks_at_original_size_and_equal_official_scorer(tatl_run, tmp_path):
    run, data, _ = tatl_run
    test = split_datalists(data, fold=0)["test"]
    out = run / "eval" / "cascade"
    gt = tmp_path / "gt"
    gt.mkdir()
    for entry in test:
        size = read_2d(entry["image"]).shape[:2]
        for name in ATTRIBUTES:
            mask = read_2d(out / "attributes" / f"{entry['id']}_attribute_{name}.png")
            assert mask.shape == size and set(np.unique(mask)) <= {0, 255}
            shutil.copy(entry[name], gt)
        assert read_2d(out / "lesion" / f"{entry['id']}_segmentation.png").shape == size
        assert read_2d(out / "union" / f"{entry['id']}_union.png").shape == size
        panel = read_2d(out / "overlays" / f"{entry['id']}_overlay.png")
        assert panel.shape[1] == 3 * size[1] + 8  # photo | ground truth | prediction, legend below
    assert len(list((out / "attributes").iterdir())) == len(ATTRIBUTES) * len(test)
    scores = json.loads((run / "eval" / "attribute_scores.json").read_text())
    official = task2.score(gt, out / "attributes")
    for name in ATTRIBUTES:
        assert scores[name]["jaccard"] == pytest.approx(official[name]["jaccard"], abs=1e-6)
    assert scores["overall"] == pytest.approx(official["overall"], abs=1e-6)


def test_scored_fold_never_reaches_any_stage(tatl_run):
    run, data, _ = tatl_run
    split = split_datalists(data, fold=0)
    test_ids = {e["id"] for e in split["test"]}
    predicted = {p.name.removesuffix("_segmentation.png") for p in (run / "eval" / "lesions").iterdir()}
    assert predicted == {e["id"] for e in split["training"] + split["validation"]}
    common = {"bundle_root": str(BUNDLE), "dataset_dir": str(data), "models_dir": str(run / "models")}
    common["output_dir"] = str(run / "eval")
    for stage in ("train_lesion.json", "train_union.json", "train_attribute.json"):
        wf = ConfigWorkflow(config_file=json.loads(config("common.json", stage)), workflow_type="train", **common)
        wf.initialize()
        for part in ("train#dataset#data", "validate#dataset#data"):
            ids = {e["id"] for e in wf.parser.get_parsed_content(part)}
            assert ids and not ids & test_ids, (stage, part)


def test_checkpoints_and_cascade_layout(tatl_run):
    run, _, _ = tatl_run
    models = run / "models"
    assert (models / "lesion" / "model.pt").is_file()
    for arch in ("unet", "linknet"):
        assert (models / "union" / arch / "model.pt").is_file()
        for name in ATTRIBUTES:
            assert (models / "attributes" / name / arch / "model.pt").is_file()
    bundle_meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert json.loads((models / "metadata.json").read_text()) == bundle_meta  # ISIC 2018: the bundle's own channels
    settings = json.loads((models / "cascade.json").read_text())
    assert settings["untrained"] == [] and settings["lesion_size"] == [64, 64] and settings["offset"] == 7
    assert settings["photo_size"] == [128, 128] and settings["normalization"] == "instance"  # 2 x lesion_size


def test_zoo_checks(tatl_run, tmp_path):
    run, data, _ = tatl_run
    models = str(run / "models")
    meta, infer = str(CONFIGS / "metadata.json"), str(CONFIGS / "inference.json")
    verify_metadata(meta_file=meta, filepath=str(META_SCHEMA))  # what `python -m monai.bundle verify_metadata` calls
    verify_net_in_out("network_def", meta, infer, any=48, bundle_root=str(BUNDLE), models_dir=models)
    overrides = {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(data),
        "models_dir": models,
        "output_dir": str(run / "eval"),
    }
    for stage in ("train_lesion.json", "train_union.json", "train_attribute.json"):
        wf = ConfigWorkflow(config_file=json.loads(config("common.json", stage)), workflow_type="train", **overrides)
        wf.initialize()
        assert not wf.check_properties(), stage
    for files, kind in ((("inference.json",), "infer"), (("common.json", "inference.json", "evaluate.json"), "infer")):
        wf = ConfigWorkflow(config_file=json.loads(config(*files)), workflow_type=kind, **overrides)
        wf.initialize()
        assert not wf.check_properties(), files


def test_cascade_exports_to_one_torchscript_file(tatl_run, tmp_path):
    run, _, _ = tatl_run
    ts = tmp_path / "model.ts"
    bundle(
        "ckpt_export", "network_def",
        "--filepath", str(ts),
        "--ckpt_file", str(run / "models" / "model.pt"),
        "--meta_file", str(CONFIGS / "metadata.json"),
        "--config_file", str(CONFIGS / "inference.json"),
        "--bundle_root", str(BUNDLE), "--models_dir", str(run / "models"),
    )  # fmt: skip
    from monai_skinattr.apps.tatl import TATLCascadeNet, cascade_settings

    settings = {k: v for k, v in cascade_settings(run / "models").items() if k not in ("photo_size", "untrained")}
    eager = TATLCascadeNet(**settings)
    eager.load_state_dict(torch.load(run / "models" / "model.pt", map_location="cpu", weights_only=True))
    x = torch.rand(2, 3, 90, 110)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(ts))(x), eager.eval()(x), atol=1e-5)


def test_inference_on_a_folder_of_photos(tatl_run, tmp_path):
    """The cascade over a folder; run again after a kill, it segments only what is missing (a kill mid-write
    leaves a temporary file and the image's other masks)."""
    run, data, _ = tatl_run
    photos = tmp_path / "photos"
    photos.mkdir()
    for entry in isic_datalist(data, task=2)[:3]:
        shutil.copy(entry["image"], photos)
    out = tmp_path / "out"
    args = ("run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(BUNDLE),
            "--models_dir", str(run / "models"), "--dataset_dir", str(photos), "--output_dir", str(out))  # fmt: skip
    bundle(*args)
    masks = sorted((out / "attributes").glob("*_attribute_*.png"))
    assert len(masks) == 3 * 5 and len(list((out / "overlays").glob("*_overlay.png"))) == 3
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    masks[0].rename(masks[0].with_name(".partial." + masks[0].name))  # killed while writing this mask
    result = bundle(*args)
    assert "resuming: 2 of 3 images already segmented" in result.stdout
    redone = {p for p in written if p.stat().st_mtime_ns != written[p]}
    assert masks[0].is_file() and redone == {p for p in written if p.name.startswith(masks[0].name[:12])}
    assert not list(out.rglob(".partial.*"))
    bundle(*args, "--resume", "false")
    assert all(p.stat().st_mtime_ns != written[p] for p in written)  # resume off: everything again


def test_switches_mean_what_they_say(tmp_path):
    """Each documented switch through the real command line: false/False/0 are false, other words are errors."""
    data = tmp_path / "data"
    probe = (
        "$print('PROBE', @cropping, repr(@lesion_masks), len(@train#random_transforms), "
        "sum(not p.requires_grad for p in @network.parameters()), repr(@init_checkpoint))"
    )
    base = [
        "run", "probe", "--init_id", "none", "--config_file", config("common.json", "train_attribute.json"),
        "--bundle_root", str(BUNDLE), "--dataset_dir", str(data), "--make_synthetic", "true",
        "--synthetic", json.dumps(TINY), "--probe", probe,
    ]  # fmt: skip
    off = bundle(*base, "--crop", "false", "--augment", "False", "--freeze_encoder", "0", "--from_union", "false")
    assert "PROBE False '' 0 0 ''" in off.stdout
    on = bundle(
        *base,
        "--crop",
        "True",
        "--lesion_source",
        "ground_truth",
        "--augment",
        "1",
        "--freeze_encoder",
        "true",
        "--from_union",
        "0",
    )
    line = next(s for s in on.stdout.splitlines() if s.startswith("PROBE"))
    cropping, masks, n_random, n_frozen, init = line.split(" ", 5)[1:]
    assert cropping == "True" and masks == "''" and int(n_random) == 3 and int(n_frozen) > 100 and init == "''"
    ignored = bundle("run", "--config_file", config("common.json", "pipeline.json"), "--bundle_root", str(BUNDLE),
                     "--workdir", str(tmp_path / "w"), "--offset", "20", "--seed", "1", check=False)  # fmt: skip
    assert ignored.returncode != 0 and "--offset, --seed would reach no run of this plan" in ignored.stderr
    assert not (tmp_path / "w").exists()


def test_wrong_dataset_dir_is_a_clear_error(tmp_path):
    result = bundle(
        "run", "--config_file", config("common.json", "pipeline.json"), "--bundle_root", str(BUNDLE),
        "--workdir", str(tmp_path / "w"), "--dataset_dir", str(tmp_path / "ISIC2018_typo"), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "dataset_dir does not exist" in result.stderr and "ISIC2018_Task1-2_Training_Input" in result.stderr
    assert not (tmp_path / "ISIC2018_typo").exists()


def _encoder(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith("net.encoder.")}


def test_table8_on_isic2017_freezes_the_encoder_in_stage_3_only(tmp_path, monkeypatch, capsys):
    """Table 8 on ISIC 2017 through the main job's plan (in process, as the command line runs it), one backbone and
    shape: TATL (FE), TATL (NF) and the no-transfer baseline, scored on negative network and streaks. Every
    stage's encoder is recorded as the stage built it: the Segment-Net's and the union segmenter's change in
    training, the FE attribute segmenters' stay exactly the trained union segmenter's."""
    import monai.bundle

    import monai_skinattr.networks
    from monai_skinattr.apps.tatl import TATLSegmenter

    data = tmp_path / "isic2017"
    synthetic.make_isic(data, n=15, size=(64, 64), year=2017, split="training", progress=False)
    prepare, started = monai_skinattr.networks.prepare_network, []

    def recording(net, *args):
        net = prepare(net, *args)
        if isinstance(net, TATLSegmenter) and len(args) == 2:  # a training stage: (init_checkpoint, frozen)
            started.append((bool(args[1]), {k: v.clone() for k, v in _encoder(net.state_dict()).items()}))
        return net

    monkeypatch.setattr(monai_skinattr.networks, "prepare_network", recording)
    monkeypatch.setattr(sys, "argv", ["monai.bundle", "run"])
    monai.bundle.run(
        config_file=[str(CONFIGS / "common.json"), str(CONFIGS / "pipeline.json")], bundle_root=str(BUNDLE),
        workdir=str(tmp_path / "work"), dataset_dir=str(data), make_synthetic=False, spatial_size=[64, 64],
        epochs=json.loads(ONE_EPOCH), experiment="table8", backbones=["efficientnet-b0"], archs=["unet"],
        inner_folds=2,
    )  # fmt: skip
    assert "**Table 8: backbones x shapes x TATL (FE) / TATL (NF) / ImageNet" in capsys.readouterr().out
    table = json.loads((tmp_path / "work" / "table8" / "table.json").read_text())["dice"]
    labels = ["EfficientNet-b0 U TATL (FE) w/o ImageNet", "EfficientNet-b0 U TATL (NF) w/o ImageNet",
              "EfficientNet-b0 U Stage 1,3 w/o ImageNet"]  # fmt: skip
    assert list(table) == labels
    assert all(sorted(v) == ["macro_average", "micro_average", "negative_network", "streaks"] for v in table.values())
    # stage 1 (the Segment-Net and 2 inner ones), 2, 3, 3 of TATL (FE); of TATL (NF); stages 1, 3, 3 of the baseline
    assert [frozen for frozen, _ in started] == [False] * 4 + [True, True] + [False] * 6 + [False] * 5
    run = tmp_path / "work" / "table8" / "EfficientNet-b0_U_TATL_(FE)_wo_ImageNet" / "fold0"
    stages = ["lesion", "union/unet", "attributes/negative_network/unet", "attributes/streaks/unet"]
    trained = [
        _encoder(torch.load(run / "models" / s / "model.pt", map_location="cpu", weights_only=True)) for s in stages
    ]
    for (_, first), last in zip([started[0], started[3]], trained[:2], strict=True):  # Segment-Net, union segmenter
        weights = [k for k in first if k.endswith("weight")]
        assert sum(not torch.equal(first[k], last[k]) for k in weights) > 0.9 * len(weights)
    union = trained[1]
    for (_, first), last in zip(started[4:6], trained[2:], strict=True):  # each attribute segmenter
        assert all(torch.equal(first[k], union[k]) and torch.equal(last[k], union[k]) for k in union)
    meta = json.loads((run / "models" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
    assert meta["num_channels"] == 5 and meta["channel_def"]["3"] == "negative_network"
    bundle(
        "verify_net_in_out", "network_def",
        "--meta_file", str(run / "models" / "metadata.json"),
        "--config_file", str(CONFIGS / "inference.json"),
        "--bundle_root", str(BUNDLE), "--models_dir", str(run / "models"), "--any", "48",
    )  # fmt: skip


def test_lesion_sources_compares_the_crops_boxes_of_every_source(tmp_path, monkeypatch):
    """``--experiment lesion_sources`` (in process, as the command line runs it) with a separate Task 1 set: four
    columns, and the box table. Ground-truth crops agree with the ground truth exactly; the first three columns
    train the same Segment-Net (same photos, same seed), so their scored photos get the same boxes."""
    import monai.bundle

    data, task1 = tmp_path / "data", tmp_path / "task1"
    synthetic.make_isic(data, n=15, size=(64, 64), progress=False)
    synthetic.make_isic(task1, n=6, size=(64, 64), split="validation", progress=False)  # other photos
    monkeypatch.setattr(sys, "argv", ["monai.bundle", "run"])
    monai.bundle.run(
        config_file=[str(CONFIGS / "common.json"), str(CONFIGS / "pipeline.json")], bundle_root=str(BUNDLE),
        workdir=str(tmp_path / "work"), dataset_dir=str(data), spatial_size=[64, 64], epochs=json.loads(ONE_EPOCH),
        experiment="lesion_sources", archs=["unet"], inner_folds=2, lesion_dataset_dir=str(task1),
    )  # fmt: skip
    out = tmp_path / "work" / "lesion_sources"
    table = json.loads((out / "table.json").read_text())
    labels = ["TATL (ground-truth lesion crops) w/o ImageNet", "TATL (in-sample lesion crops) w/o ImageNet",
              "TATL w/o ImageNet", "TATL (Task 1 Segment-Net) w/o ImageNet"]  # fmt: skip
    assert list(table["dice"]) == labels and list(table["box_iou"]) == labels
    boxes = {label: table["box_iou"][label] for label in labels}
    assert boxes[labels[0]]["training"][0] == 1.0
    assert all(0 < v[0] <= 1 for b in boxes.values() for v in b.values())
    assert boxes[labels[0]]["scored"] == boxes[labels[1]]["scored"] == boxes[labels[2]]["scored"]
    assert "**Lesion boxes**" in (out / "table.md").read_text()
    assert '"lesion_source":' not in (out / "table.md").read_text().split("Settings:")[1]  # set per column
    task1_run = out / "TATL_(Task_1_Segment-Net)_wo_ImageNet" / "fold0"
    split = split_datalists(data, fold=0)
    predicted = {p.name.removesuffix("_segmentation.png") for p in (task1_run / "eval" / "lesions").iterdir()}
    assert predicted == {e["id"] for e in split["training"] + split["validation"]}


def test_multi_gpu_ranks_stop_together(tmp_path):
    """torchrun, 2 gloo processes, patience 1 and a zero learning rate: early stopping fires on every rank."""
    data = tmp_path / "data"
    synthetic.make_isic(data, n=15, size=(64, 64), progress=False)
    result = bundle(
        "run",
        "--config_file", config("common.json", "train_attribute.json", "multi_gpu_train.json"),
        "--bundle_root", str(BUNDLE), "--dataset_dir", str(data), "--models_dir", str(tmp_path / "models"),
        "--output_dir", str(tmp_path / "eval"), "--from_union", "false", "--crop", "false",
        "--spatial_size", "[64, 64]", "--max_epochs", "5", "--patience", "1", "--learning_rate", "0.0",
        "--batch_size", "2",
        prefix=(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m"),
    )  # fmt: skip
    assert result.returncode == 0
    log = result.stdout + result.stderr
    assert "EarlyStopping: Stop training" in log  # logged by rank 0
    assert log.count("Epoch [2/5]: [3/3] 100%") >= 2 and "Epoch [3/5]" not in log  # both ranks stopped after 2
    assert (tmp_path / "models" / "attributes" / "streaks" / "unet" / "model.pt").is_file()


def test_figure5_pretext_vs_downstream_from_the_main_jobs_runs(tatl_run):
    """``--experiment figure5`` after the main job: its runs, nothing trained; the downstream column is the main
    job's table, the pretext column the union maps scored as each attribute."""
    run, _, _ = tatl_run
    root = run.parents[3]
    result = pipeline(root / "work", root / "data", "--experiment", "figure5", root="bundles/tatl", cwd=root)
    assert "running" not in result.stdout
    assert "| attribute | downstream (target segmenters) | pretext (union network) |" in result.stdout
    table = json.loads((root / "work" / "figure5" / "table.json").read_text())["dice"]
    main = json.loads((root / "work" / "tatl" / "table.json").read_text())["dice"]["TATL w/o ImageNet"]
    assert table["downstream (target segmenters)"] == main
    assert set(table["pretext (union network)"]) == set(main)
    assert (root / "work" / "figure5" / "figure.png").stat().st_size > 1000


def test_figure7_stability_bounds(tmp_path):
    from monai_skinattr.apps.tatl import experiment_plan
    from monai_skinattr.runner import run_plan

    data = tmp_path / "data"
    synthetic.make_isic(data, n=15, size=(64, 64), progress=False)
    overrides = {"dataset_dir": str(data), "spatial_size": [64, 64], "lesion_size": [64, 64], "archs": ["unet"]}
    figure7 = {"attributes": ["streaks", "pigment_network"], "max_samples": 4, "iters": 2}
    plan = experiment_plan("figure7", BUNDLE, tmp_path / "work", [0], {"lesion": 1, "union": 1}, overrides, figure7)
    markdown = run_plan(plan)
    assert "**TATL Figure 7: stability bound x 100" in markdown and "ImageNet column not run" in markdown
    table = json.loads((tmp_path / "work" / "figure7" / "table.json").read_text())
    assert set(table) == {"streaks", "pigment_network"} and all(
        set(v) == {"random", "TATL w/o ImageNet"} for v in table.values()
    )
    assert all(v > 0 or np.isnan(v) for row in table.values() for v in row.values())
    assert (tmp_path / "work" / "figure7" / "figure.png").stat().st_size > 1000
