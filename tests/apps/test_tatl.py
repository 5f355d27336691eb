"""TATL app pieces: the cascade network's crop/paste geometry, datalists, switches, data preparation, reports."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.handlers import IgniteMetricHandler, MeanIoUHandler, from_engine
from monai.transforms.utils import generate_spatial_bounding_box
from torch import nn

from monai_skinattr.apps.tatl import (
    TATLCascadeNet,
    experiment_plan,
    experiment_variants,
    grid_offset,
    optimize_cascade,
    prepare_dataset,
    run_label,
    split_datalists,
    summary_table,
)
from monai_skinattr.bundles import bundle_dir
from monai_skinattr.config import as_bool
from monai_skinattr.data import synthetic
from monai_skinattr.data.checks import DatasetLayoutError
from monai_skinattr.transforms import LesionBBoxCrop, lesion_boxes

CONFIGS = bundle_dir("tatl") / "configs"


class _Channel(nn.Module):
    """A 'probability network' returning one input channel (lets the geometry be checked exactly)."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.channel = channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.channel : self.channel + 1]


def _geometry_net(offset: int) -> TATLCascadeNet:
    net = TATLCascadeNet(["streaks"], lesion_size=(40, 60), crop_size=(32, 48), offset=offset)
    net.lesion_net = _Channel(0)  # the "lesion" is wherever channel 0 is bright
    net.union_net = _Channel(1)
    net.attribute_nets["streaks"] = _Channel(2)
    return net.eval()


def test_lesion_boxes_equal_monai_bounding_boxes():
    """The one box of LesionBBoxCrop and the cascade is MONAI's generate_spatial_bounding_box with a margin,
    clipped, in 2D and 3D, batched and scripted."""
    mask = torch.zeros(3, 1, 30, 40, dtype=torch.bool)
    mask[0, 0, 5:9, 10:20] = True
    mask[1, 0, 0:2, 35:40] = True
    boxes = torch.jit.script(lesion_boxes)(mask, 3)
    for b in range(2):
        start, end = generate_spatial_bounding_box(mask[b], margin=3, allow_smaller=True)
        assert boxes[b].tolist() == [*start, *end]
        crop = LesionBBoxCrop(offset=3)(torch.rand(1, 30, 40), mask[b].float())
        assert boxes[b].tolist() == crop.meta["lesion_bbox"]
    assert boxes[2].tolist() == [0, 0, 30, 40]  # empty mask: the whole grid
    volume = torch.zeros(1, 2, 6, 7, 8, dtype=torch.bool)
    volume[0, 1, 1:3, 2:6, 7] = True
    start, end = generate_spatial_bounding_box(volume[0], margin=1, allow_smaller=True)
    assert lesion_boxes(volume, 1)[0].tolist() == [*start, *end]


def test_cascade_crops_and_pastes_back_in_place():
    """Pasting the crop of a channel back reproduces that channel inside the box and zero outside."""
    x = torch.zeros(1, 3, 80, 120)
    x[0, 0, 20:40, 30:60] = 1.0  # lesion at rows 20..40, cols 30..60 of the input
    x[0, 1] = torch.linspace(0, 1, 120)[None].expand(80, -1)  # a smooth ramp: resampling reproduces it
    x[0, 2] = 0.5
    out = _geometry_net(offset=2)(x)
    assert out.shape == (1, 6 - 2, 80, 120)
    lesion_grid_box = lesion_boxes(
        (torch.nn.functional.interpolate(x[:, :1], size=(40, 60), mode="bilinear") >= 0.5), 2
    )
    r0, c0, r1, c1 = (lesion_grid_box[0] * 2).tolist()  # grid 40x60 -> input 80x120: x2
    union, streaks = out[0, 2], out[0, 3]
    assert torch.allclose(union[r0:r1, c0:c1], x[0, 1, r0:r1, c0:c1], atol=0.02)
    assert torch.allclose(streaks[r0:r1, c0:c1], torch.full_like(streaks[r0:r1, c0:c1], 0.5), atol=1e-5)
    outside = torch.ones(80, 120, dtype=torch.bool)
    outside[r0:r1, c0:c1] = False
    assert streaks[outside].abs().max() == 0 and union[outside].abs().max() == 0
    assert torch.allclose(out[0, 0] + out[0, 1], torch.ones(80, 120))  # background = 1 - lesion


def test_cascade_is_batched_and_scriptable():
    net = TATLCascadeNet(["streaks", "globules"], lesion_size=(32, 32), crop_size=(32, 32), offset=4).eval()
    x = torch.rand(3, 3, 50, 70)
    with torch.no_grad():
        batched = net(x)
        single = torch.cat([net(x[i : i + 1]) for i in range(3)])
        scripted = torch.jit.script(net)(x)
    assert batched.shape == (3, 5, 50, 70) and net.channels == ["background", "lesion", "union", "streaks", "globules"]
    assert torch.allclose(batched, single, atol=1e-5) and torch.allclose(batched, scripted, atol=1e-5)


@pytest.mark.parametrize(
    "value, expected", [(True, True), (False, False), ("false", False), ("False", False), ("0", False), (0, False),
                        ("true", True), ("TRUE", True), ("1", True), (1, True)]
)  # fmt: skip
def test_as_bool(value, expected):
    assert as_bool(value, "switch") is expected


@pytest.mark.parametrize("value", ["nope", "", 2, None, "maybe", 0.5])
def test_as_bool_rejects(value):
    with pytest.raises(ValueError, match="'switch' must be true or false"):
        as_bool(value, "switch")


def test_prepare_dataset_refuses_wrong_folders(tmp_path):
    own = tmp_path / "bundle_data"
    with pytest.raises(DatasetLayoutError, match="does not exist.*ISIC2018_Task1-2_Training_Input"):
        prepare_dataset(tmp_path / "typo", own)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="not an ISIC challenge folder"):
        prepare_dataset(tmp_path / "photos", own)
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["a.txt"]  # nothing generated there
    assert not (tmp_path / "typo").exists() and not own.exists()


def test_prepare_dataset_generates_only_where_asked(tmp_path):
    own = tmp_path / "bundle_data"
    params = {"n": 5, "size": [32, 32]}
    assert prepare_dataset(own, own, params) == str(own)  # the bundle's own folder: generated on first use
    assert synthetic.is_complete(own, "isic", "training")
    asked = tmp_path / "asked"
    prepare_dataset(asked, own, params, make_synthetic="true")
    assert synthetic.is_complete(asked, "isic", "training")
    assert prepare_dataset(asked, own) == str(asked)  # now a real layout: read as it is


def test_split_keeps_the_scored_fold_apart(tmp_path):
    synthetic.make_isic(tmp_path, n=30, size=(32, 32), progress=False)
    seen = set()
    for fold in range(5):
        split = split_datalists(tmp_path, fold=fold, num_folds=5, val_fraction=0.2)
        ids = {k: {e["id"] for e in v} for k, v in split.items()}
        assert len(ids["test"]) == 6 and len(ids["validation"]) >= 1 and len(ids["training"]) >= 10
        assert not ids["test"] & (ids["training"] | ids["validation"]) and not ids["training"] & ids["validation"]
        assert ids["test"] | ids["training"] | ids["validation"] == {f"ISIC_{i:07d}" for i in range(30)}
        seen |= ids["test"]
    assert len(seen) == 30  # every image is scored exactly once over the five rounds
    fewer = split_datalists(tmp_path, fold=0, train_fraction=0.5)
    assert len(fewer["training"]) == pytest.approx(len(split_datalists(tmp_path, fold=0)["training"]) / 2, abs=1)


def _selection_score(metric_fn, preds, labels) -> float:
    engine = Engine(lambda e, b: b)
    IgniteMetricHandler(metric_fn=metric_fn, output_transform=from_engine(["pred", "label"])).attach(engine, "score")
    engine.run([{"pred": preds, "label": labels}])
    return engine.state.metrics["score"]


def test_selection_metric_sees_false_positives():
    """1 positive + 9 negative validation images, the negatives filled with false positives: MONAI's MeanIoU
    ignores the empty ground truths (1.0); the stage's configured ISIC selection metric does not."""
    labels = torch.zeros(10, 1, 16, 16)
    labels[0, :, 4:8, 4:8] = 1
    preds = labels.clone()
    preds[1:] = 1
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "train_attribute.json")])
    parser.update({"attributes": ["streaks"]})
    isic = _selection_score(parser.get_parsed_content("selection_metric"), preds, labels)
    engine = Engine(lambda e, b: b)
    MeanIoUHandler(include_background=True, output_transform=from_engine(["pred", "label"])).attach(engine, "iou")
    engine.run([{"pred": preds, "label": labels}])
    assert engine.state.metrics["iou"] == pytest.approx(1.0)
    assert isic < 0.01
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "train_lesion.json")])
    lesion = _selection_score(parser.get_parsed_content("selection_metric"), preds, labels)
    assert lesion == pytest.approx(0.1)  # Task 1 mean Jaccard: 1 right image, 9 wrong


def test_summary_table_mean_and_std():
    def fold(j):
        return {"streaks": {"jaccard": j, "dice": 0}, "macro_average": {"jaccard": j, "dice": 0},
                "micro_average": {"jaccard": j / 2, "dice": 0}}  # fmt: skip

    markdown, rows, summary = summary_table({"A": [fold(0.2), fold(0.4)], "B": [fold(0.5)]}, title="T")
    assert summary["A"]["streaks"] == pytest.approx([0.3, np.std([0.2, 0.4], ddof=1), 2])
    assert summary["B"]["micro_average"] == pytest.approx([0.25, 0.0, 1])
    assert "| streaks | 0.3000 ± 0.1414 | 0.5000 ± 0.0000 |" in markdown
    assert rows[0] == ["metric", "attribute", "A mean", "A std", "B mean", "B std"]
    assert rows[1][:3] == ["jaccard", "streaks", "0.300000"]
    json.dumps(summary)


def _parse(*files: str, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in files])
    parser.update(overrides)
    return parser


def test_imagenet_weights_reach_stages_1_and_2_and_stage_3_inherits(tmp_path):
    from monai.networks.nets import EfficientNetBN

    weights = tmp_path / "efficientnet-b0.pth"
    torch.save(EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=2).state_dict(), weights)
    stem = torch.load(weights, weights_only=True)["_conv_stem.weight"]
    data = tmp_path / "data"
    synthetic.make_isic(data, n=5, size=(32, 32), progress=False)
    common = {"dataset_dir": str(data), "encoder_weights": str(weights), "bundle_root": str(tmp_path)}
    for stage in ("train_lesion.json", "train_union.json"):
        net = _parse("common.json", stage, **common).get_parsed_content("network_def")
        assert torch.equal(net.net.encoder.stem.conv.weight, stem), stage
        assert net.norm.mode == "imagenet"
    stage3 = _parse("common.json", "train_attribute.json", **common)
    assert stage3.get_parsed_content("start_weights") == ""  # from the union checkpoint instead
    assert stage3.get_parsed_content("init_checkpoint").endswith("models/union/unet/model.pt")
    alone = _parse("common.json", "train_attribute.json", **common, from_union="false")
    assert alone.get_parsed_content("start_weights") == str(weights)
    plain = _parse("common.json", "train_union.json", dataset_dir=str(data), bundle_root=str(tmp_path))
    assert plain.get_parsed_content("network_def").norm.mode == "instance"
    assert plain.get_parsed_content("train#random_transforms") == []  # no augmentation by default


def test_ground_truth_crop_counts_the_offset_on_the_lesion_grid(tmp_path):
    """With ground-truth lesions the box is grown on the lesion grid too, as for predicted lesions."""
    data = tmp_path / "data"
    synthetic.make_isic(data, n=5, size=(256, 320), progress=False)
    parser = _parse(
        "common.json", "train_union.json", dataset_dir=str(data), bundle_root=str(tmp_path),
        lesion_source="ground_truth", lesion_size=[64, 80], offset=5, spatial_size=[32, 32], val_fraction=1,
    )  # fmt: skip
    entry = parser.get_parsed_content("train#dataset#data")[0]
    cropper = next(t for t in parser.get_parsed_content("train#deterministic_transforms") if hasattr(t, "cropper"))
    assert entry["lesion"].endswith("_segmentation.png")
    crop = parser.get_parsed_content("train#preprocessing")(entry)
    from monai_skinattr.data.checks import read_2d

    lesion = torch.from_numpy(read_2d(entry["lesion"]) > 0)[None, None].float()
    grid = torch.nn.functional.interpolate(lesion, size=(64, 80), mode="nearest")[0]
    photo = torch.rand(3, 128, 160)  # photos are sampled at photo_size, 2 x lesion_size
    expected = LesionBBoxCrop(offset=5)(photo, grid).meta["lesion_bbox"]
    assert crop["image"].shape[1:] == (32, 32) and cropper.cropper.offset == 5
    assert [op for op in crop["image"].applied_operations if op["class"] == "LesionBBoxCrop"]
    assert crop["image"].meta["lesion_bbox"] == expected


def test_experiment_variants_label_what_runs():
    plan = experiment_variants("table3", {}, lesion_rows=128)
    assert [p[0] for p in plan] == [
        "Stage 3 w/o ImageNet", "Stage 2,3 w/o ImageNet", "Stage 1,3 w/o ImageNet", "TATL w/o ImageNet"
    ]  # fmt: skip
    assert all(p[2]["encoder_weights"] == "" and p[2]["offset"] == 13 for p in plan)
    plan = experiment_variants("table3", {"encoder_weights": "/w.pth"})
    assert [p[0] for p in plan][-2:] == ["TATL", "TATL w/o ImageNet"] and plan[0][2]["encoder_weights"] == "/w.pth"
    assert [p[2]["offset"] for p in experiment_variants("table5", {})] == [0, 20, 40, 60]
    assert [p[0] for p in experiment_variants("table6")] == [
        "ResNet-152 U, Stage 3 w/o ImageNet", "Inception-ResNet-v2 U, Stage 3 w/o ImageNet",
        "DenseNet-169 U, Stage 3 w/o ImageNet", "EfficientNet-b0 U, Stage 3 w/o ImageNet",
        "U-Eff (TATL) w/o ImageNet", "L-Eff (TATL) w/o ImageNet", "U + L-Eff (TATL) w/o ImageNet",
    ]  # fmt: skip
    files = {"resnet152": "/w/resnet152-394f9c45.pth", "densenet169": "/w/densenet169-b2777c0a.pth"}
    table6 = experiment_variants("table6", {"encoder_weights": "/w/b0.pth", "imagenet_weights": files})
    assert [(p[0], p[1], p[2].get("encoder"), p[2]["encoder_weights"], p[2].get("crop")) for p in table6] == [
        ("ResNet-152 U, Stage 3", (3,), "resnet152", files["resnet152"], False),
        ("Inception-ResNet-v2 U, Stage 3 w/o ImageNet", (3,), "inceptionresnetv2", "", False),
        ("DenseNet-169 U, Stage 3", (3,), "densenet169", files["densenet169"], False),
        ("EfficientNet-b0 U, Stage 3", (3,), "efficientnet-b0", "/w/b0.pth", False),
        ("U-Eff (TATL)", (1, 2, 3), None, "/w/b0.pth", None),
        ("L-Eff (TATL)", (1, 2, 3), None, "/w/b0.pth", None),
        ("U + L-Eff (TATL)", (1, 2, 3), None, "/w/b0.pth", None),
    ]
    assert all("imagenet_weights" not in p[2] for p in table6)  # a plan setting, not a config value of the runs
    table8 = experiment_variants("table8", {"encoder_weights": "/w/b0.pth"})
    assert len(table8) == 5 * 2 * 3 and {p[2]["encoder"] for p in table8} == {
        "vgg16", "resnet152", "inceptionresnetv2", "densenet169", "efficientnet-b0"
    }  # fmt: skip
    assert [(p[0], p[1], p[2]["archs"], p[2].get("freeze_encoder")) for p in table8[:3]] == [
        ("VGG16 U TATL (FE) w/o ImageNet", (1, 2, 3), ["unet"], True),
        ("VGG16 U TATL (NF) w/o ImageNet", (1, 2, 3), ["unet"], False),
        ("VGG16 U Stage 1,3 w/o ImageNet", (1, 3), ["unet"], None),
    ]
    assert [p[0] for p in table8[-3:]] == [
        "EfficientNet-b0 Link TATL (FE)", "EfficientNet-b0 Link TATL (NF)", "EfficientNet-b0 Link ImageNet"
    ]  # fmt: skip
    small = experiment_variants("table8", {"backbones": ["densenet169"], "archs": ["linknet"]})
    assert [p[0] for p in small] == [
        "DenseNet-169 Link TATL (FE) w/o ImageNet", "DenseNet-169 Link TATL (NF) w/o ImageNet",
        "DenseNet-169 Link Stage 1,3 w/o ImageNet",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"'backbones' of table8 must be a non-empty list of \['vgg16', 'resnet152'"):
        experiment_variants("table8", {"backbones": ["vgg19"]})
    with pytest.raises(ValueError, match=r"'backbones' of table6 must be a non-empty list of \['resnet152'"):
        experiment_variants("table6", {"backbones": ["vgg16"]})  # not one of Table 6's: no column would be left
    with pytest.raises(ValueError, match="'table8' runs the paper's protocol, whose crops come from a Segment-Net"):
        experiment_variants("table8", {"lesion_source": "ground_truth"})
    for switch, value in (("freeze_encoder", "true"), ("crop", False), ("augment", 1)):
        with pytest.raises(
            ValueError, match=f"'table8' runs the paper's protocol and names its columns by it; '{switch}'"
        ):
            experiment_variants("table8", {switch: value})
    with pytest.raises(ValueError, match="'backbones' chooses the backbones of table6 and table8, not of 'table3'"):
        experiment_variants("table3", {"backbones": ["vgg16"]})
    assert (
        experiment_variants("tatl", {"freeze_encoder": "true", "crop": "false"})[0][0] == "Stage 2,3 (FE) w/o ImageNet"
    )
    assert (
        len(experiment_variants("figure4")) == 8 and len(experiment_variants("figure4", {"encoder_weights": "w"})) == 12
    )
    with pytest.raises(ValueError, match="experiment must be one of"):
        experiment_variants("table9")


@pytest.mark.parametrize(
    "stages, overrides, label",
    [
        ((1, 2, 3), {}, "TATL w/o ImageNet"),
        ((1, 2, 3), {"encoder_weights": "w.pth"}, "TATL"),
        ((1, 2, 3), {"crop": "false"}, "Stage 2,3 w/o ImageNet"),
        ((1, 3), {"lesion_source": "ground_truth", "augment": "1"}, "Stage 1,3 (ground-truth lesion crops, "
                                                                   "augmentation) w/o ImageNet"),
        ((3,), {"lesion_source": "ground_truth", "freeze_encoder": True, "encoder_weights": "w"}, "Stage 3 (FE)"),
        ((1, 2, 3), {"lesion_source": "inner_folds"}, "TATL w/o ImageNet"),
        ((1, 2, 3), {"lesion_source": "segment_net"}, "TATL (in-sample lesion crops) w/o ImageNet"),
        ((1, 2, 3), {"lesion_source": "segment_net", "lesion_dataset_dir": "/d", "encoder_weights": "w"},
         "TATL (Task 1 Segment-Net)"),
        ((2, 3), {"lesion_source": "segment_net", "crop": False}, "Stage 2,3 w/o ImageNet"),
    ],
)  # fmt: skip
def test_run_label_names_what_ran(stages, overrides, label):
    assert run_label(stages, overrides) == label


def test_figure4_has_a_panel_per_attribute(tmp_path):
    """As the paper's Figure 4: one panel per attribute and one of the macro average, a line per method."""
    from monai_skinattr.apps.tatl.experiments import _figure

    rows = ("streaks", "globules", "macro_average", "micro_average")
    summary = {f"{m} @ {f}%": {r: [f / 100 * k, 0.0, 1] for r in rows} for m, k in (("TATL", 1), ("Stage 3", 0.5))
               for f in (100, 60)}  # fmt: skip
    _figure("figure4", summary, tmp_path / "f4.png")
    _figure("figure4", {k: {"macro_average": v["macro_average"]} for k, v in summary.items()}, tmp_path / "1.png")
    from PIL import Image

    assert Image.open(tmp_path / "f4.png").size[0] > 2 * Image.open(tmp_path / "1.png").size[0]  # 3 panels a row


def _sharded_masks():
    labels = torch.zeros(9, 1, 8, 8)
    labels[::2, :, 2:6, 2:6] = 1  # images 0, 2, 4, 6, 8 show the attribute
    preds = labels.clone()
    preds[1::2] = 1  # false positives on the odd images only
    return preds, labels


def _rank_score(rank: int, world: int, folder: str) -> None:
    import torch.distributed as dist

    from monai_skinattr.metrics import ISICTask2Metric

    dist.init_process_group("gloo", init_method=f"file://{folder}/init", rank=rank, world_size=world)
    preds, labels = _sharded_masks()
    shard = slice(rank, None, world)  # uneven shards: 5 and 4 images, as DistributedSampler(even_divisible=False)
    score = _selection_score(ISICTask2Metric(["a"], reduction="overall"), preds[shard], labels[shard])
    Path(folder, f"rank{rank}.txt").write_text(repr(score))
    dist.destroy_process_group()


def test_selection_metric_is_gathered_over_ranks(tmp_path):
    """Under DDP every rank validates its shard; the metric gathers all shards, so every rank sees the same score
    (the whole validation set's) and early stopping decides the same on every rank."""
    from monai_skinattr.metrics import ISICTask2Metric

    torch.multiprocessing.spawn(_rank_score, args=(2, str(tmp_path)), nprocs=2)
    scores = [float((tmp_path / f"rank{r}.txt").read_text()) for r in range(2)]
    preds, labels = _sharded_masks()
    whole = _selection_score(ISICTask2Metric(["a"], reduction="overall"), preds, labels)
    rank0_alone = _selection_score(ISICTask2Metric(["a"], reduction="overall"), preds[0::2], labels[0::2])
    assert scores[0] == scores[1] == pytest.approx(whole) and whole != pytest.approx(rank0_alone)


def test_make_synthetic_never_overwrites_other_data(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "ISIC_0000000.jpg").write_bytes(b"not ours")
    with pytest.raises(DatasetLayoutError, match="holds other data"):
        prepare_dataset(real, tmp_path / "own", {"n": 3, "size": [32, 32]}, make_synthetic=True)
    assert (real / "ISIC_0000000.jpg").read_bytes() == b"not ours"


def test_paper_offset_is_refused_by_name_when_negative():
    assert grid_offset(40, 128) == 13 and grid_offset(0, 64) == 0
    for bad in (-2, 2.5, "40", True):
        with pytest.raises(ValueError, match="'paper_offset' must be an integer >= 0"):
            grid_offset(bad, 128)


def test_experiment_plan_names_every_run_once(tmp_path):
    """Each variant x fold gets its own round of runs; figure7 trains the pretext stages only."""
    data = tmp_path / "data"
    synthetic.make_isic(data, n=5, size=(32, 32), progress=False)
    overrides = {"dataset_dir": str(data), "archs": ["unet"], "lesion_size": [128, 160]}
    plan = experiment_plan("table5", CONFIGS.parent, tmp_path / "work", [0, 1], {"attribute": 2}, overrides)
    # Segment-Net, its lesions, 5 inner Segment-Nets and theirs, union, 5 attributes, cascade, scores
    assert len(plan.runs) == 4 * 2 * (1 + 1 + 5 * 2 + 1 + 5 + 1 + 1) and plan.workdir == tmp_path / "work" / "table5"
    assert [r.name for r in plan.runs[:5]] == [
        "offset_0_wo_ImageNet/fold0/lesion", "offset_0_wo_ImageNet/fold0/predict_lesion",
        "offset_0_wo_ImageNet/fold0/lesion/inner0", "offset_0_wo_ImageNet/fold0/predict_lesion/inner0",
        "offset_0_wo_ImageNet/fold0/lesion/inner1",
    ]  # fmt: skip
    assert [r.overrides["offset"] for r in plan.runs if r.name.endswith("/fold0/lesion")] == [0, 7, 13, 20]
    assert {r.overrides["max_epochs"] for r in plan.runs if "/attribute/" in r.name} == {2}
    assert {r.overrides["max_epochs"] for r in plan.runs if "/lesion" in r.name} == {40}
    figure7 = experiment_plan("figure7", CONFIGS.parent, tmp_path / "work", [1], None, {**overrides, "inner_folds": 2})
    assert [r.name for r in figure7.runs] == ["lesion", "predict_lesion", "lesion/inner0", "predict_lesion/inner0",
                                             "lesion/inner1", "predict_lesion/inner1", "union/unet"]  # fmt: skip
    assert figure7.runs[0].overrides["fold"] == 1 and figure7.runs[0].overrides["offset"] == 13


def _cascade_with_frozen_encoders() -> TATLCascadeNet:
    """A cascade as stage 3 trained "FE" leaves it: every attribute member holds its union member's encoder."""
    torch.manual_seed(0)
    net = TATLCascadeNet(["streaks"], lesion_size=(32, 32), crop_size=(32, 64), offset=4).eval()
    for ensemble in net.attribute_nets.values():
        for union, member in zip(net.union_net.nets, ensemble.nets, strict=True):
            member.net.encoder.load_state_dict(union.net.encoder.state_dict())
    return net


def test_optimized_cascade_gives_the_same_maps():
    net = _cascade_with_frozen_encoders()
    x = torch.rand(3, 3, 40, 60)
    with torch.no_grad():
        expected = net(x)
        fast = optimize_cascade(net, chunk=2)
        assert fast.shared_encoders == [True, True] and fast.chunk == 2
        assert torch.allclose(fast(x), expected, atol=1e-5)


def test_encoders_are_shared_only_where_equal():
    net = _cascade_with_frozen_encoders()
    with torch.no_grad():
        net.attribute_nets["streaks"].nets[1].net.encoder.stem.conv.weight[0, 0, 0, 0] += 1e-3
    assert net.share_encoders() == [True, False]
    with pytest.raises(ValueError, match="chunk must be an integer >= 0"):
        optimize_cascade(net, chunk=-1)


def test_synthetic_data_made_with_other_settings_is_refused(tmp_path):
    """A synthetic folder never stands in silently for a differently sized one (the stage configs' and a plan's
    settings once wrote to the same folder)."""
    own = tmp_path / "own"
    prepare_dataset(own, own, {"n": 3, "size": [32, 32], "seed": 0})
    assert prepare_dataset(own, own, {"n": 3, "size": (32, 32)}) == str(own)
    with pytest.raises(DatasetLayoutError, match=r"made with other settings: n=3 \(asked 4\), size=\[32, 32\]"):
        prepare_dataset(own, own, {"n": 4, "size": [48, 48], "seed": 0})


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_encoder_reaches_stage_3_only(freeze):
    """TATL (FE) as the pipeline passes it on: the attribute segmenters (stage 3) train with their encoders frozen,
    the Segment-Net and the union segmenters (stages 1 and 2) with theirs trained; each run's own configs resolve
    ``frozen`` so, and its settings check passes."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "pipeline.json")])
    parser.update(
        {"bundle_root": str(CONFIGS.parent), "freeze_encoder": freeze, "archs": ["unet"], "train_fraction": 0.6}
    )
    trained = [run for run in parser.get_parsed_content("plan").runs if run.configs[-1].startswith("train_")]
    assert {run.configs[-1] for run in trained} == {"train_lesion.json", "train_union.json", "train_attribute.json"}
    for run in trained:
        stage = ConfigParser()
        stage.read_config([str(CONFIGS / c) for c in run.configs])
        stage.update({"bundle_root": str(CONFIGS.parent), **run.overrides})
        stage.get_parsed_content("checked_settings")
        frozen = stage.get_parsed_content("frozen")
        assert frozen is (freeze and run.configs[-1] == "train_attribute.json"), run.name
        assert ("freeze_encoder" in run.overrides) is (run.configs[-1] == "train_attribute.json"), run.name


def test_a_cascade_that_does_not_record_its_photo_sampling_is_refused(tmp_path):
    """A cascade.json from before photo_size was recorded: its networks saw photos sampled another way."""
    from monai_skinattr.apps.tatl import cascade_settings

    (tmp_path / "cascade.json").write_text(json.dumps({"attributes": ["streaks"], "inference_size": None}))
    with pytest.raises(ValueError, match="does not record photo_size: the cascade was assembled before TATL sampled"):
        cascade_settings(tmp_path)
    assert cascade_settings(tmp_path / "none")["photo_size"] == [768, 1024]  # no cascade.json: the defaults


def test_table8_plan_scores_two_attributes_over_reruns():
    """Table 8 as the pipeline builds it: stage 3 for negative network and streaks only, the union segmenter still
    on every attribute, the cascade assembled and scored on the two, each fold run again with another
    initialisation seed (the same folds)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "pipeline.json")])
    parser.update({"bundle_root": str(CONFIGS.parent), "experiment": "table8", "backbones": ["efficientnet-b0"],
                   "archs": ["unet"], "reruns": 2})  # fmt: skip
    runs = parser.get_parsed_content("plan").runs
    rounds = sorted({r.name.rsplit("/", 1)[0].split("/attribute")[0] for r in runs if r.configs[-1] == "evaluate.json"})
    assert rounds == [
        "EfficientNet-b0_U_Stage_13_wo_ImageNet/fold0", "EfficientNet-b0_U_Stage_13_wo_ImageNet/fold0_rerun1",
        "EfficientNet-b0_U_TATL_(FE)_wo_ImageNet/fold0", "EfficientNet-b0_U_TATL_(FE)_wo_ImageNet/fold0_rerun1",
        "EfficientNet-b0_U_TATL_(NF)_wo_ImageNet/fold0", "EfficientNet-b0_U_TATL_(NF)_wo_ImageNet/fold0_rerun1",
    ]  # fmt: skip
    by_config: dict[str, list] = {}
    for run in runs:
        by_config.setdefault(run.configs[-1], []).append(run)
        assert run.overrides.get("init_seed") == (1 if "_rerun1/" in run.name else None), run.name
        assert run.overrides["encoder"] == "efficientnet-b0" and "backbones" not in run.overrides, run.name
    assert {r.overrides["attribute"] for r in by_config["train_attribute.json"]} == {"negative_network", "streaks"}
    assert all("attributes" not in r.overrides for r in by_config["train_union.json"])  # the union of all five
    for config in ("assemble.json", "evaluate.json"):
        assert all(r.overrides["attributes"] == ["negative_network", "streaks"] for r in by_config[config])


def test_figure4_subsamples_the_target_segmenters_data_only():
    """Figure 4's training fraction reaches the stage-3 runs only; the Segment-Net and the union segmenters train
    on all the training folds (their configs resolve ``train_fraction`` to 1)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "pipeline.json")])
    parser.update({"bundle_root": str(CONFIGS.parent), "experiment": "figure4", "archs": ["unet"]})
    runs = parser.get_parsed_content("plan").runs
    fractions: dict[str, set] = {}
    for run in runs:
        fractions.setdefault(run.configs[-1], set()).add(run.overrides.get("train_fraction"))
    assert fractions.pop("train_attribute.json") == {1.0, 0.8, 0.6, 0.4}
    assert set().union(*fractions.values()) == {None}  # every other run: the config's own 1.0
    for name in ("TATL_wo_ImageNet_at_60pct/fold0/attribute/streaks/unet", "TATL_wo_ImageNet_at_60pct/fold0/lesion"):
        run = next(r for r in runs if r.name == name)
        stage = ConfigParser()
        stage.read_config([str(CONFIGS / c) for c in run.configs])
        stage.update({"bundle_root": str(CONFIGS.parent), **run.overrides})
        assert stage.get_parsed_content("train_fraction") == (0.6 if "attribute" in name else 1.0), name


def _resolved(run, bundle_root: Path, key: str) -> object:
    stage = ConfigParser()
    stage.read_config([str(CONFIGS / c) for c in run.configs])
    stage.update({"bundle_root": str(bundle_root), **run.overrides})
    stage.get_parsed_content("checked_settings")
    return stage.get_parsed_content(key)


@pytest.mark.parametrize("source", ["inner_folds", "segment_net", "task1", "ground_truth"])
def test_every_segment_net_trains_and_predicts_the_photos_its_source_says(tmp_path, source):
    """The main job's plan, each Segment-Net run resolved by its own configs: with ``inner_folds`` no Segment-Net
    predicts a photo it trained on and the crops of every training and validation photo are predicted once; with
    ``segment_net`` the round's Segment-Net predicts the photos it trained on (in-sample); with a Task 1 set
    (here the Task 1 ground truth of the very folder, as ISIC 2018 Task 1 holds the Task 2 photos) the scored
    photos are taken out of it; ``ground_truth`` predicts nothing. The scored photos reach no Segment-Net. (The
    validation photos select every Segment-Net's checkpoint, as they select every stage's.)"""
    data = tmp_path / "data"
    synthetic.make_isic(data, n=15, size=(32, 32), progress=False)
    settings = {"lesion_source": "segment_net", "lesion_dataset_dir": str(data)} if source == "task1" else {
        "lesion_source": source}  # fmt: skip
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "pipeline.json")])
    parser.update({"bundle_root": str(CONFIGS.parent), "dataset_dir": str(data), "archs": ["unet"],
                   "inner_folds": 3, **settings})  # fmt: skip
    runs = parser.get_parsed_content("plan").runs
    split = {k: {e["id"] for e in v} for k, v in split_datalists(data, fold=0).items()}
    trained, selected, predicted = {}, {}, {}
    for run in runs:
        name = run.name.split("fold0/")[1]
        if run.configs[-1] == "train_lesion.json":
            trained[name] = {e["id"] for e in _resolved(run, CONFIGS.parent, "train#dataset#data")}
            selected[name] = {e["id"] for e in _resolved(run, CONFIGS.parent, "validate#dataset#data")}
        elif run.configs[-1] == "predict_lesion.json":
            predicted[name.replace("predict_lesion", "lesion")] = [e["id"] for e in _resolved(run, CONFIGS.parent,
                                                                                              "datalist")]  # fmt: skip
    everything = split["training"] | split["validation"]
    assert not any((ids | selected[n]) & split["test"] for n, ids in trained.items())
    if source == "ground_truth":
        assert list(trained) == ["lesion"] and predicted == {}
        return
    assert sorted(sum(predicted.values(), [])) == sorted(everything)  # every crop's lesion predicted once
    if source == "inner_folds":
        assert list(trained) == ["lesion", "lesion/inner0", "lesion/inner1", "lesion/inner2"]
        assert all(trained[n].isdisjoint(predicted[n]) for n in trained)
        assert predicted["lesion"] == sorted(split["validation"])  # the round's Segment-Net never trained on them
    elif source == "segment_net":
        assert trained == {"lesion": split["training"]}  # in sample: it predicts the photos it trained on
    else:
        assert trained["lesion"] | selected["lesion"] == set(isic_ids(15)) - split["test"]


def isic_ids(n: int) -> list[str]:
    return [f"ISIC_{i:07d}" for i in range(n)]


def test_box_ious_compare_the_boxes_tatl_cuts(tmp_path):
    """Known boxes: 8 x 8 squares 4 rows apart overlap by a third; grown by 2 px, by a half; an empty prediction
    is the whole grid (the box TATL cuts then)."""
    from monai_skinattr.apps.tatl.boxes import box_ious
    from monai_skinattr.transforms.io import save_mask

    def mask(name, rows):
        m = np.zeros((32, 32), dtype=bool)
        m[rows, 4:12] = True
        save_mask(m.astype(np.uint8) * 255, tmp_path / name)
        return tmp_path / name

    pred, truth, empty = mask("p.png", slice(4, 12)), mask("t.png", slice(8, 16)), mask("e.png", slice(0, 0))
    assert box_ious([pred, truth], [truth, truth], [32, 32], 0).tolist() == pytest.approx([1 / 3, 1.0])
    assert box_ious([pred], [truth], [32, 32], 2).tolist() == pytest.approx([0.5])
    assert box_ious([empty], [truth], [32, 32], 0).tolist() == pytest.approx([64 / 1024])
    assert box_ious([pred], [truth], [64, 64], 0).tolist() == pytest.approx([1 / 3])  # the same on a finer grid
    with pytest.raises(ValueError, match="need as many predicted as ground-truth masks"):
        box_ious([pred], [], [32, 32], 0)


def test_lesion_sources_has_a_column_per_source(tmp_path):
    task1 = str(synthetic.make_isic(tmp_path, n=2, size=(32, 32), split="validation", progress=False))
    sources = experiment_variants("lesion_sources", {"lesion_dataset_dir": task1, "encoder_weights": "w"})
    assert [(label, v["lesion_source"], v["lesion_dataset_dir"]) for label, _, v in sources] == [
        ("TATL (ground-truth lesion crops)", "ground_truth", ""), ("TATL (in-sample lesion crops)", "segment_net", ""),
        ("TATL", "inner_folds", ""), ("TATL (Task 1 Segment-Net)", "segment_net", task1),
    ]  # fmt: skip
    assert len(experiment_variants("lesion_sources")) == 3  # without a Task 1 set, no fourth column
    with pytest.raises(ValueError, match="'lesion_sources' compares where the crops' lesions come from; 'crop'"):
        experiment_variants("lesion_sources", {"crop": "false"})
    with pytest.raises(ValueError, match="'lesion_dataset_dir' trains the Segment-Net on other photos"):
        experiment_variants("tatl", {"lesion_dataset_dir": task1})  # with the default inner_folds
