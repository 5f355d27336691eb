import json
import shutil

import numpy as np
import pytest
from PIL import Image

from monai_skinattr.data import ATTRIBUTES, DatasetLayoutError, isic_datalist, synthetic
from monai_skinattr.data.isic import convert_isic2017_features, isic_image_list


@pytest.fixture(scope="module")
def isic2018(tmp_path_factory):
    root = tmp_path_factory.mktemp("isic2018")
    synthetic.make_isic(root, n=6, size=(48, 64), seed=1, progress=False)
    synthetic.make_isic(root, n=3, size=(48, 64), seed=1, split="validation", progress=False)
    return root


def _read(path):
    return np.asarray(Image.open(path))


def test_task1_and_task2_datalists(isic2018):
    task1 = isic_datalist(isic2018, task=1)
    assert [e["id"] for e in task1] == [f"ISIC_{i:07d}" for i in range(6)]
    assert set(task1[0]) == {"image", "label", "id"}
    task2 = isic_datalist(isic2018, task=2)
    assert set(task2[0]) == {"image", "lesion", "id", *ATTRIBUTES}
    assert task2[0]["globules"].endswith("ISIC2018_Task2_Training_GroundTruth_v3/ISIC_0000000_attribute_globules.png")
    val = isic_datalist(isic2018, task=2, split="validation", attributes=("streaks",))
    assert len(val) == 3 and val[0]["id"] == "ISIC_0100000" and "globules" not in val[0]


def test_synthetic_masks_binary_inside_lesion_and_sized(isic2018):
    for entry in isic_datalist(isic2018, task=2):
        image = _read(entry["image"])
        lesion = _read(entry["lesion"])
        assert image.shape == (48, 64, 3) and lesion.shape == (48, 64)
        assert set(np.unique(lesion)) == {0, 255}
        for name in ATTRIBUTES:
            mask = _read(entry[name])
            assert set(np.unique(mask)) <= {0, 255}
            assert not (mask & ~lesion).any(), f"{name} outside the lesion in {entry['id']}"


def test_synthetic_is_deterministic(tmp_path):
    a = synthetic.make_isic(tmp_path / "a", n=2, size=(32, 32), seed=3, progress=False)
    b = synthetic.make_isic(tmp_path / "b", n=2, size=(32, 32), seed=3, progress=False)
    c = synthetic.make_isic(tmp_path / "c", n=2, size=(32, 32), seed=4, progress=False)
    name = "ISIC2018_Task1-2_Training_Input/ISIC_0000001.jpg"
    assert (a / name).read_bytes() == (b / name).read_bytes() != (c / name).read_bytes()
    assert synthetic.is_complete(a, "isic", "training") and not synthetic.is_complete(a, "isic", "test")


def test_attribute_frequencies_follow_isic2018():
    rng = np.random.default_rng(0)
    n = 400
    counts = dict.fromkeys(ATTRIBUTES, 0)
    for _ in range(n):
        _, lesion, masks = synthetic.isic_sample(rng, (40, 40))
        assert lesion.any()
        for name, mask in masks.items():
            counts[name] += bool(mask.any())
    for name, p in synthetic.ISIC2018_FREQUENCIES.items():
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(counts[name] / n - p) < 4 * sigma + 0.01, (name, counts[name] / n, p)


def test_isic2016_and_2017_layouts(tmp_path):
    r16 = synthetic.make_isic(tmp_path / "16", n=2, size=(32, 48), year=2016, progress=False)
    e16 = isic_datalist(r16, task=1)
    assert e16[0]["label"].endswith("ISBI2016_ISIC_Part1_Training_GroundTruth/ISIC_0000000_Segmentation.png")
    with pytest.raises(ValueError, match="no Task 2"):
        isic_datalist(r16, task=2)
    r17 = synthetic.make_isic(tmp_path / "17", n=2, size=(32, 48), year=2017, split="test", progress=False)
    e17 = isic_datalist(r17, task=2, split="test", cache_dir=tmp_path / "cache")
    assert set(e17[0]) == {"image", "lesion", "id", "milia_like_cyst", "negative_network", "pigment_network", "streaks"}
    assert e17[0]["streaks"] == str(tmp_path / "cache" / "ISIC_0200000_attribute_streaks.png")


def test_isic2017_superpixel_conversion_exact(tmp_path):
    index = np.array([[0, 0, 1], [2, 2, 1], [256, 256, 2]])
    rgb = np.stack([index & 255, (index >> 8) & 255, (index >> 16) & 255], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "ISIC_0000001_superpixels.png")
    labels = {name: [0] * 257 for name in ("milia_like_cyst", "negative_network", "pigment_network", "streaks")}
    labels["streaks"][1] = labels["streaks"][256] = 1
    (tmp_path / "ISIC_0000001_features.json").write_text(json.dumps(labels))
    out = convert_isic2017_features(tmp_path, tmp_path, tmp_path / "masks")
    streaks = _read(out / "ISIC_0000001_attribute_streaks.png")
    assert np.array_equal(streaks, np.array([[0, 0, 255], [0, 0, 255], [255, 255, 0]]))
    assert not _read(out / "ISIC_0000001_attribute_milia_like_cyst.png").any()


def _broken_copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_broken_layouts_name_every_file(isic2018, tmp_path):
    root = _broken_copy(isic2018, tmp_path / "broken")
    gt1 = root / "ISIC2018_Task1_Training_GroundTruth"
    gt2 = root / "ISIC2018_Task2_Training_GroundTruth_v3"
    images = root / "ISIC2018_Task1-2_Training_Input"
    (gt1 / "ISIC_0000001_segmentation.png").unlink()  # missing mask
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(gt1 / "ISIC_0000002_segmentation.png")  # wrong size
    data = (images / "ISIC_0000003.jpg").read_bytes()
    (images / "ISIC_0000003.jpg").write_bytes(data[: len(data) // 2])  # corrupt (truncated) JPEG
    grey = np.full((48, 64), 128, np.uint8)
    Image.fromarray(grey).save(gt2 / "ISIC_0000004_attribute_streaks.png")  # non-binary
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(gt1 / "ISIC_0009999_segmentation.png")  # mask, no image

    with pytest.raises(DatasetLayoutError) as err:
        isic_datalist(root, task=1)
    message = str(err.value)
    assert "ISIC_0000001.jpg: no 'label' mask" in message
    assert "ISIC_0009999_segmentation.png: mask without a matching image" in message

    (gt1 / "ISIC_0009999_segmentation.png").unlink()
    shutil.copy(isic2018 / "ISIC2018_Task1_Training_GroundTruth" / "ISIC_0000001_segmentation.png", gt1)
    with pytest.raises(DatasetLayoutError) as err:
        isic_datalist(root, task=2)
    problems = "\n".join(err.value.problems)
    assert "ISIC_0000002_segmentation.png: mask size (10, 10) differs from image size (48, 64)" in problems
    assert "ISIC_0000003.jpg: unreadable image" in problems
    assert "ISIC_0000004_attribute_streaks.png: mask is not binary" in problems
    assert len(err.value.problems) == 3


def test_missing_folders(tmp_path):
    for reader in (isic_datalist, isic_image_list):
        with pytest.raises(FileNotFoundError, match=f"'{tmp_path / 'nope'}' does not exist"):
            reader(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    for reader in (isic_datalist, isic_image_list):
        with pytest.raises(FileNotFoundError) as err:
            reader(tmp_path)
        message = str(err.value)
        assert f"'{tmp_path}' holds no ISIC 2016/2017/2018 image folder" in message
        for name in ("ISIC2018_Task1-2_Training_Input", "ISIC-2017_Training_Data", "ISBI2016_ISIC_Part1_Training_Data"):
            assert name in message
        assert "notes.txt" in message
    (tmp_path / "ISIC2018_Task1-2_Training_Input").mkdir()
    with pytest.raises(DatasetLayoutError, match="no ISIC_xxxxxxx photos"):
        isic_datalist(tmp_path, task=1)
    with pytest.raises(FileNotFoundError, match=f"Did you mean '{tmp_path}'"):
        isic_datalist(tmp_path / "ISIC2018_Task1-2_Training_Input")  # the image folder instead of its parent


def test_interrupted_generation_is_refused_until_rerun(tmp_path, monkeypatch):
    real_save, calls = synthetic.save_image_atomic, []

    def save_then_fail(*args, **kwargs):
        calls.append(args[1])
        if len(calls) > 15:  # 2 images of 7 files each, then part of the third
            raise KeyboardInterrupt
        real_save(*args, **kwargs)

    monkeypatch.setattr(synthetic, "save_image_atomic", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        synthetic.make_isic(tmp_path, n=6, size=(32, 32), progress=False)
    monkeypatch.undo()
    assert synthetic.is_partial(tmp_path, "isic", "training")
    assert not synthetic.is_complete(tmp_path, "isic", "training")
    assert len(list((tmp_path / "ISIC2018_Task1-2_Training_Input").glob("*.jpg"))) == 3
    readers = (lambda: isic_datalist(tmp_path, task=2, validate=False), lambda: isic_image_list(tmp_path, "training"))
    for read in readers:
        with pytest.raises(DatasetLayoutError) as err:
            read()
        message = str(err.value)
        assert str(tmp_path) in message and "generation" in message and "was interrupted" in message
        assert "delete the folder" in message and "--n 6 --size 32 32 --seed 0 --year 2018" in message

    synthetic.make_isic(tmp_path, n=6, size=(32, 32), progress=False)
    assert synthetic.is_complete(tmp_path, "isic", "training")
    assert not synthetic.is_partial(tmp_path, "isic", "training")
    assert not list(tmp_path.glob(".synthetic-*.partial"))
    assert len(isic_datalist(tmp_path, task=2)) == 6

    synthetic.make_isic(tmp_path, n=2, size=(32, 32), split="validation", progress=False)
    (tmp_path / ".synthetic-isic-validation.partial").write_text("not json")  # only that split is refused
    assert len(isic_datalist(tmp_path, task=1)) == 6
    with pytest.raises(DatasetLayoutError, match="rerun the generator"):
        isic_datalist(tmp_path, task=1, split="validation")
