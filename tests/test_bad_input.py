"""Bad input everywhere a user can give it: each case is a clear error naming the item, raised before any work.

Library cases run in process; the bundle cases run ``python -m monai.bundle`` and check that nothing was written.
"""

import re
import shutil
import sys

import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_skinattr.apps.tatl import TATLCascadeNet, TATLSegmenter, split_datalists
from monai_skinattr.data import DatasetLayoutError, image_datalist, isic_datalist, synthetic
from monai_skinattr.networks import prepare_network
from monai_skinattr.transforms import LesionBBoxCrop, LesionBBoxCropd, TileGrid, TileGridd, UnionMask
from tests.bundles.test_tatl_bundle import BUNDLE, CONFIGS, bundle, config

ROOT_BUNDLES = BUNDLE.parent

IMAGES = "ISIC2018_Task1-2_Training_Input"
LESIONS = "ISIC2018_Task1_Training_GroundTruth"
ATTRS = "ISIC2018_Task2_Training_GroundTruth_v3"


@pytest.fixture(scope="module")
def isic(tmp_path_factory):
    root = tmp_path_factory.mktemp("isic")
    synthetic.make_isic(root, n=10, size=(32, 32), progress=False)
    return root


def _broken(isic, tmp_path):
    """A copy of the tiny ISIC set with a truncated photo, a greyscale photo, an RGB and an RGBA mask."""
    root = tmp_path / "broken"
    shutil.copytree(isic, root)
    jpg = root / IMAGES / "ISIC_0000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-200])
    grey = root / IMAGES / "ISIC_0000002.jpg"
    Image.open(grey).convert("L").save(grey)
    rgb = root / LESIONS / "ISIC_0000003_segmentation.png"
    Image.open(rgb).convert("RGB").save(rgb)
    rgba = root / ATTRS / "ISIC_0000004_attribute_streaks.png"
    Image.open(rgba).convert("RGBA").save(rgba)
    return root


def test_training_data_names_every_bad_file(isic, tmp_path):
    root = _broken(isic, tmp_path)
    with pytest.raises(DatasetLayoutError) as err:
        isic_datalist(root, task=2)
    problems = err.value.problems
    assert len(problems) == 4
    assert f"{root / IMAGES / 'ISIC_0000001.jpg'}: unreadable image (image file is truncated" in problems[0]
    assert problems[1] == f"{root / IMAGES / 'ISIC_0000002.jpg'}: image has 1 channel(s) (greyscale), expected 3 (RGB)"
    assert (
        problems[2]
        == f"{root / LESIONS / 'ISIC_0000003_segmentation.png'}: mask has 3 channel(s) (RGB), expected 1 (greyscale)"
    )  # noqa: E501
    assert problems[3].startswith(f"{root / ATTRS / 'ISIC_0000004_attribute_streaks.png'}: mask has 4 channel(s)")


def test_photos_to_segment_are_all_checked_first(isic, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(isic / IMAGES, photos)
    (photos / "ISIC_0000001.jpg").write_bytes((photos / "ISIC_0000001.jpg").read_bytes()[:-200])
    Image.open(photos / "ISIC_0000002.jpg").convert("RGBA").save(photos / "ISIC_0000002.png")
    (photos / "notes.jpg").write_text("not a photo")
    with pytest.raises(DatasetLayoutError) as err:
        image_datalist(photos)
    problems = err.value.problems
    assert [p.split(":")[0] for p in problems] == [
        str(photos / n) for n in ("ISIC_0000001.jpg", "ISIC_0000002.png", "notes.jpg")
    ]
    assert "truncated" in problems[0] and "4 channel(s)" in problems[1] and "unreadable image" in problems[2]


def test_too_few_images_for_the_split(isic, tmp_path):
    few = tmp_path / "few"
    synthetic.make_isic(few, n=4, size=(32, 32), progress=False)
    with pytest.raises(DatasetLayoutError, match=r"(?s)'.*few'.*4 training image\(s\) cannot give fold 0 of 5"):
        split_datalists(few)
    with pytest.raises(ValueError, match="fold must be one of 0..4 .* got 5"):
        split_datalists(isic, fold=5)


def _named(x: torch.Tensor, name: str) -> MetaTensor:
    return MetaTensor(x, meta={"filename_or_obj": name})


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda nan: LesionBBoxCrop()(_named(nan, "photo.jpg"), torch.ones(1, 8, 8)), "image 'photo.jpg' holds 1 NaN"),
        (lambda nan: LesionBBoxCrop()(torch.rand(3, 8, 8), _named(nan[:1], "lesion.png")), "mask 'lesion.png' holds 1"),
        (lambda nan: LesionBBoxCropd("image", "lesion")({"image": nan, "lesion": torch.ones(1, 8, 8)}), "image holds"),
        (lambda nan: UnionMask()([torch.zeros(1, 8, 8), _named(nan[:1], "streaks.png")]), "mask 'streaks.png' holds"),
    ],
)
def test_nan_inputs_are_named(call, message):
    nan = torch.rand(3, 8, 8)
    nan[0, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=message):
        call(nan)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LesionBBoxCrop(offset=-1), "LesionBBoxCrop offset must be an integer >= 0, got -1"),
        (lambda: LesionBBoxCrop(offset=2.5), "LesionBBoxCrop offset must be an integer >= 0, got 2.5"),
        (lambda: LesionBBoxCrop(offset="40"), "LesionBBoxCrop offset must be an integer >= 0, got '40'"),
        (lambda: TATLCascadeNet(["streaks"], offset=7.5), "offset must be an integer >= 0, got 7.5"),
        (lambda: TileGrid(window=16.5), "TileGrid window must be an integer >= 1, got 16.5"),
        (lambda: TileGrid(window=16, stride=0), "TileGrid stride must be an integer >= 1, got 0"),
        (lambda: TileGrid(window=16, stride=-4), "TileGrid stride must be an integer >= 1, got -4"),
        (lambda: TileGrid(window=16, stride=32), "stride 32 > window 16 would leave gaps"),
        (lambda: TileGridd("image", window=0), "TileGrid window must be an integer >= 1, got 0"),
    ],
)
def test_out_of_range_offsets_and_tiles(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_window_larger_than_the_image_names_it():
    image = _named(torch.rand(1, 20, 40), "fundus.png")
    with pytest.raises(ValueError, match=r"TileGrid: image 'fundus.png' of spatial size \(20, 40\) is smaller"):
        TileGrid(window=32)(image)
    with pytest.raises(ValueError, match=r"image 'fundus.png' of spatial size \(20, 40\) is smaller than the window"):
        TileGridd(["image", "label"], window=32)({"image": image, "label": torch.zeros(1, 20, 40)})


def test_checkpoints_that_do_not_fit(tmp_path):
    linknet = tmp_path / "union" / "linknet.pt"
    linknet.parent.mkdir()
    torch.save(TATLSegmenter("linknet").state_dict(), linknet)
    unet = "TATLSegmenter(arch='unet', encoder='efficientnet-b0')"
    unet_re = re.escape(unet)
    with pytest.raises(FileNotFoundError, match=rf"checkpoint '.*missing.pt' does not exist; .* weights of {unet_re}"):
        prepare_network(TATLSegmenter("unet"), tmp_path / "missing.pt")
    with pytest.raises(ValueError) as err:
        prepare_network(TATLSegmenter("unet"), linknet)
    assert str(err.value).startswith(f"checkpoint '{linknet}' does not fit {unet}: it lacks 60 of the network's 420")
    assert "\n" not in str(err.value)
    cascade = tmp_path / "cascade.pt"  # an ISIC 2018 cascade (with globules) given to an ISIC 2017 one
    torch.save(TATLCascadeNet(["globules", "streaks"], archs=["unet"]).state_dict(), cascade)
    with pytest.raises(
        ValueError, match=r"does not fit TATLCascadeNet\(attributes=\['streaks'\].*: 420 of its tensors are not"
    ):
        prepare_network(TATLCascadeNet(["streaks"], archs=["unet"]), cascade)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(linknet.read_bytes()[:5000])
    with pytest.raises(ValueError, match=rf"checkpoint '{truncated}' cannot be read \(.*\); .* weights of {unet_re}"):
        prepare_network(TATLSegmenter("unet"), truncated)


def _run(*args: str):
    return bundle("run", "--bundle_root", str(BUNDLE), *args, check=False)


def _refused(configs: list, **overrides) -> str:
    """Every message of the error ``monai.bundle.run`` (what ``python -m monai.bundle run`` calls once its
    arguments are parsed) raises for the bundle configs ``configs`` with ``overrides``; fails if it runs."""
    import monai.bundle

    with pytest.raises(Exception) as err:
        monai.bundle.run(config_file=[str(CONFIGS / c) for c in configs], **overrides)
    return "\n".join(_messages(err.value))


def test_bundle_training_stops_before_any_work(isic, tmp_path):
    """Broken data, then a stage-3 start from a checkpoint of the other shape: one clear error each, nothing written."""
    models = tmp_path / "models"
    common = {"bundle_root": str(BUNDLE), "models_dir": str(models), "output_dir": str(tmp_path / "eval"),
              "spatial_size": [32, 32], "max_epochs": 1}  # fmt: skip
    stage3 = ["common.json", "train_attribute.json"]
    errors = _refused(stage3, dataset_dir=str(_broken(isic, tmp_path)), **common)
    assert "4 problem(s) in dataset" in errors and "ISIC_0000001.jpg: unreadable image" in errors
    assert "ISIC_0000003_segmentation.png: mask has 3 channel(s) (RGB), expected 1" in errors
    (models / "union" / "unet").mkdir(parents=True)
    torch.save(TATLSegmenter("linknet").state_dict(), models / "union" / "unet" / "model.pt")
    errors = _refused(stage3, dataset_dir=str(isic), lesion_source="ground_truth", **common)
    assert (
        f"ValueError: checkpoint '{models}/union/unet/model.pt' does not fit TATLSegmenter(arch='unet', "
        "encoder='efficientnet-b0'): it lacks 60" in errors
    )
    assert sorted(p.name for p in models.rglob("*") if p.is_file()) == ["model.pt"]  # the planted one only
    assert not (tmp_path / "eval").exists()


def test_bundle_inference_stops_before_any_work(isic, tmp_path):
    out = tmp_path / "out"
    photos = tmp_path / "photos"
    shutil.copytree(isic / IMAGES, photos)
    args = {"bundle_root": str(BUNDLE), "output_dir": str(out), "dataset_dir": str(photos),
            "models_dir": str(tmp_path / "no_models")}  # fmt: skip
    errors = _refused(["inference.json"], **args, photo_size=[384, 512])
    assert "ValueError: photo_size [384, 512] is not the [768, 1024] this cascade was trained on" in errors
    errors = _refused(["inference.json"], **args)
    assert f"FileNotFoundError: checkpoint '{tmp_path}/no_models/model.pt' does not exist" in errors
    (photos / "ISIC_0000005.jpg").write_bytes((photos / "ISIC_0000005.jpg").read_bytes()[:-300])
    errors = _refused(["inference.json"], **args)
    assert f"{photos}/ISIC_0000005.jpg: unreadable image (image file is truncated" in errors
    assert not out.exists()


PLAN = config("common.json", "pipeline.json")


def _files(folder):
    return sorted(str(p) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize(
    "configs, args, message",
    [
        (PLAN, ["--spatial_size", "[65, 97]"], "'spatial_size' must be 2 positive multiples of 32, got [65, 97]."),
        (PLAN, ["--make_synthetic", "maybe"], "'make_synthetic' must be true or false (or 1 / 0), got 'maybe'."),
        (PLAN, ["--lesion_source", "in_sample"], "'lesion_source' must be one of ['ground_truth', 'segment_net', "
                                                 "'inner_folds'], got 'in_sample'."),
    ],
)  # fmt: skip
def test_settings_are_refused_by_name_before_any_work(tmp_path, configs, args, message):
    """Each through the command a user types, with the bundle's own (default) data folder: the error names the
    setting as typed, and nothing is written: no record, models, event files, nor synthetic data. (The stage configs
    run the same check: see the in-process cases below.)"""
    work = tmp_path / "work"
    data = _files(BUNDLE / "data")
    result = _run("--config_file", configs, "--workdir", str(work), *args)
    assert result.returncode != 0 and f"ValueError: {message}" in result.stderr, result.stderr[-2000:]
    assert not work.exists() and _files(BUNDLE / "data") == data


def test_synthetic_settings_that_differ_from_the_folder_are_refused(tmp_path):
    data, root = tmp_path / "data", tmp_path / "bundle_root"
    synthetic.make_isic(data, n=3, size=(32, 32), progress=False)
    before = _files(data)
    root.mkdir()
    errors = _refused(["common.json", "train_union.json"], bundle_root=str(root), dataset_dir=str(data),
                      make_synthetic="true", synthetic={"n": 50, "size": [128, 160], "seed": 0})  # fmt: skip
    assert (
        "synthetic isic training data made with other settings: n=3 (asked 50), size=[32, 32] (asked [128, 160]); "
        f"to make it with the settings asked, delete it (`rm -r {data}`) and run again, or set another dataset_dir"
    ) in errors
    assert not any(p.is_file() for p in root.rglob("*")) and _files(data) == before


#: each bundle's first training config, and a size it cannot honour
TRAINING = {
    "tatl": ("train_union.json", [65, 97], "'spatial_size' must be 2 positive multiples of 32, got [65, 97]."),
    "mobilenet_unet": ("train_frozen.json", [0, 64], "'spatial_size' must be 2 positive integers, got [0, 64]."),
    "iscf": ("train.json", [65, 97], "'spatial_size' must be 2 positive multiples of 16, got [65, 97]."),
    "input_transfer": ("train_segmenter.json", [96, 97],
                       "'spatial_size' must be 2 positive multiples of 16, got [96, 97]."),
    "transfer": ("train.json", [65, 97], "'spatial_size' must be 2 positive multiples of 16, got [65, 97]."),
}  # fmt: skip


def _messages(error: BaseException) -> list[str]:
    out = []
    while error is not None:
        out.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    return out


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"paper_offset": -2}, "'paper_offset' must be an integer >= 0 (pixels of a 384-row grid), got -2."),
        ({"paper_offset": 2000}, "'paper_offset' 2000 (667 pixels on the lesion grid) must be smaller than 128, the "
                                 "short side of the lesion grid (lesion_size [128, 160])."),
        ({"folds": [7]}, "'folds' must be an integer from 0 to 4 (num_folds 5), got 7."),
        ({"lesion_dataset_dir": "/data/ISIC2017"}, "'lesion_dataset_dir' trains the Segment-Net on other photos, so "
                                                   "its lesions on the training photos are already out of sample: use "
                                                   "it with lesion_source 'segment_net', not 'inner_folds'."),
        ({"experiment": "lesion_sources", "lesion_source": "segment_net"}, "'lesion_sources' sets 'lesion_source' per "
                                                                           "column itself; remove 'lesion_source' "
                                                                           "'segment_net'."),
        ({"experiment": "table5", "paper_offset": 20}, "'table5' sets 'paper_offset' per column itself; remove "
                                                       "'paper_offset' 20."),
    ],
)  # fmt: skip
def test_tatl_pipeline_settings_are_refused_before_any_work(tmp_path, monkeypatch, overrides, message):
    """The main job's plan config, as the command line runs it once its arguments are parsed: the plan's own
    settings are refused before its record (``runs.json``) or anything else is written."""
    monkeypatch.setattr(sys, "argv", ["monai.bundle", "run"])  # what refuse_unused_settings reads
    work = tmp_path / "work"
    errors = _refused(["common.json", "pipeline.json"], bundle_root=str(BUNDLE), workdir=str(work), **overrides)
    assert f"ValueError: {message}" in errors
    assert not work.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"offset": -30}, "'offset' must be an integer >= 0, got -30."),
        ({"offset": 130, "lesion_size": [128, 160]}, "'offset' 130 must be smaller than 128, the short side of the "
                                                      "lesion grid (lesion_size [128, 160])."),
        ({"fold": 5}, "'fold' must be an integer from 0 to 4 (num_folds 5), got 5."),
        ({"crop": "maybe"}, "'crop' must be true or false (or 1 / 0), got 'maybe'."),
        ({"photo_size": [768, 0]}, "'photo_size' must be 2 positive integers, got [768, 0]."),
        ({"inner_folds": 1}, "'inner_folds' must be an integer >= 2, got 1."),
        ({"use_predicted_lesion": False}, "'use_predicted_lesion' was replaced by 'lesion_source' (TATL bundle 0.6.0): "
                                          "'lesion_source ground_truth' for ground-truth crops, 'segment_net' for the "
                                          "old predicted (in-sample) ones."),
        ({"freeze_encoder": "true"}, "'freeze_encoder' applies to stage 3 only (train_attribute.json, TATL's FE): "
                                     "the Segment-Net and the union segmenters always train their encoders."),
    ],
)  # fmt: skip
def test_tatl_stage_settings_are_refused_before_any_work(tmp_path, overrides, message):
    import monai.bundle

    root = tmp_path / "bundle_root"
    root.mkdir()
    with pytest.raises(Exception) as err:
        monai.bundle.run(config_file=[str(CONFIGS / "common.json"), str(CONFIGS / "train_union.json")],
                         bundle_root=str(root), **overrides)  # fmt: skip
    assert f"ValueError: {message}" in _messages(err.value)
    assert not any(p.is_file() for p in root.rglob("*"))


def test_a_missing_lesion_dataset_dir_is_refused_before_any_work(tmp_path):
    import monai.bundle

    with pytest.raises(Exception) as err:
        configs = [str(CONFIGS / "common.json"), str(CONFIGS / "train_lesion.json")]
        monai.bundle.run(config_file=configs, bundle_root=str(tmp_path), lesion_source="segment_net",
                         lesion_dataset_dir="/nowhere/ISIC")  # fmt: skip
    assert "DatasetLayoutError: 1 problem(s) in dataset '/nowhere/ISIC':\n  - lesion_dataset_dir: not an ISIC " \
           "challenge folder" in _messages(err.value)  # fmt: skip
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("case", ["size", "switch", "data"])
@pytest.mark.parametrize("name", list(TRAINING))
def test_every_bundle_refuses_each_class_of_bad_input_before_any_work(tmp_path, name, case):
    """One case of each class (a size, a switch, the data folder) on each bundle's training, run as the command
    line runs it (``monai.bundle.run``) with every output under ``bundle_root``: an error naming what was given, and
    nothing written."""
    import monai.bundle

    config_name, size, size_message = TRAINING[name]
    root = tmp_path / "bundle_root"
    root.mkdir()
    overrides, message = {
        "size": ({"spatial_size": size}, f"ValueError: {size_message}"),
        "switch": ({"resume": "maybe"}, "ValueError: 'resume' must be true or false (or 1 / 0), got 'maybe'."),
        "data": ({"dataset_dir": str(tmp_path / "nowhere")}, f"problem(s) in dataset '{tmp_path / 'nowhere'}'"),
    }[case]
    configs = [str(ROOT_BUNDLES / name / "configs" / f) for f in ("common.json", config_name)]
    with pytest.raises(Exception) as err:
        monai.bundle.run(config_file=configs, bundle_root=str(root), **overrides)
    assert any(message in m for m in _messages(err.value)), _messages(err.value)
    assert not any(p.is_file() for p in root.rglob("*"))


def test_the_transfer_study_checks_the_size_of_every_network_it_trains():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(ROOT_BUNDLES / "transfer" / "configs" / f) for f in ("common.json", "study.json")])
    parser.update({"spatial_size": [48, 48], "networks": ["unet"]})
    parser.get_parsed_content("checked_study_settings")  # 48 = 3 x 16 suits the U-Net
    parser.update({"networks": ["unet", "swin"]})
    with pytest.raises(Exception) as err:
        parser.get_parsed_content("checked_study_settings")  # the Swin U-Net halves 5 times
    assert "'spatial_size' must be 2 positive multiples of 32, got [48, 48]." in "".join(_messages(err.value))
