import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_skinattr.data import DatasetLayoutError, acdc_datalist, covidqu_datalist, idrid_datalist, synthetic
from monai_skinattr.data.acdc import read_info
from monai_skinattr.data.synthetic import main as synthetic_cli


@pytest.fixture(scope="module")
def acdc(tmp_path_factory):
    root = tmp_path_factory.mktemp("acdc") / "database"
    synthetic.make_acdc(root, n=2, size=(40, 40, 5), n_frames=6, progress=False)
    synthetic.make_acdc(root, n=1, size=(40, 40, 5), n_frames=6, split="testing", progress=False)
    return root


def test_acdc_ed_es_frames(acdc):
    data = acdc_datalist(acdc.parent)  # the parent of database/ is accepted too
    assert [(e["patient"], e["phase"]) for e in data] == [
        ("patient001", "ED"),
        ("patient001", "ES"),
        ("patient002", "ED"),
        ("patient002", "ES"),
    ]
    assert all("_4d" not in e["image"] for e in data)
    info = read_info(acdc / "training" / "patient001" / "Info.cfg")
    assert info["ED"] == "1" and int(info["ES"]) == data[1]["frame"] and info["NbFrame"] == "6"
    assert data[0]["frame"] == 1 and data[0]["image"].endswith("patient001_frame01.nii.gz")
    label = nib.load(data[1]["label"])
    assert label.shape == (40, 40, 5)
    assert set(np.unique(np.asarray(label.dataobj))) == {0, 1, 2, 3}
    assert label.header.get_zooms()[2] == 10.0
    testing = acdc_datalist(acdc, split="testing", phases=("ES",))
    assert [e["patient"] for e in testing] == ["patient101"]


def test_acdc_broken(acdc, tmp_path):
    root = shutil.copytree(acdc, tmp_path / "database")
    p1, p2 = root / "training" / "patient001", root / "training" / "patient002"
    (p1 / "Info.cfg").unlink()
    gt = next(p2.glob("*_frame01_gt.nii.gz"))
    nib.save(nib.Nifti1Image(np.full((40, 40, 5), 7, np.uint8), np.eye(4)), str(gt))
    es = next(p for p in p2.glob("*_frame*.nii.gz") if "_gt" not in p.name and "frame01" not in p.name)
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 4), np.int16), np.eye(4)), str(es))
    with pytest.raises(DatasetLayoutError) as err:
        acdc_datalist(root)
    problems = "\n".join(err.value.problems)
    assert "patient001/Info.cfg: missing" in problems
    assert "patient002_frame01_gt.nii.gz: label values [7] outside [0, 1, 2, 3]" in problems
    assert "differs from image shape (40, 40, 4)" in problems


def test_idrid_lesion_types_and_missing_masks(tmp_path):
    root = synthetic.make_idrid(tmp_path, n=3, size=(64, 96), progress=False)
    ma = idrid_datalist(root)
    assert [e["id"] for e in ma] == ["IDRiD_01", "IDRiD_02", "IDRiD_03"]
    assert ma[0]["label"].endswith("1. Microaneurysms/IDRiD_01_MA.tif")
    mask = np.asarray(Image.open(ma[0]["label"]))
    assert mask.shape == (64, 96) and 0 < (mask > 0).sum() < 0.05 * mask.size
    assert idrid_datalist(root / "A. Segmentation", lesion="EX")[2]["label"].endswith("IDRiD_03_EX.tif")
    ex_dir = root / "A. Segmentation" / "2. All Segmentation Groundtruths" / "a. Training Set" / "3. Hard Exudates"
    (ex_dir / "IDRiD_02_EX.tif").unlink()
    assert [e["id"] for e in idrid_datalist(root, lesion="EX", missing="skip")] == ["IDRiD_01", "IDRiD_03"]
    with pytest.raises(DatasetLayoutError, match="IDRiD_02.jpg: no EX mask"):
        idrid_datalist(root, lesion="EX")
    with pytest.raises(ValueError, match="lesion must be one of"):
        idrid_datalist(root, lesion="XX")
    with pytest.raises(FileNotFoundError, match="b. Testing Set"):
        idrid_datalist(root, split="testing")


def test_idrid_non_binary_mask(tmp_path):
    root = synthetic.make_idrid(tmp_path, n=1, size=(64, 96), progress=False)
    path = idrid_datalist(root)[0]["label"]
    Image.fromarray(np.arange(64 * 96, dtype=np.uint16).reshape(64, 96).astype(np.uint8)).save(path)
    with pytest.raises(DatasetLayoutError, match="IDRiD_01_MA.tif: mask is not binary"):
        idrid_datalist(root)


def test_covidqu_classes_and_empty_infection(tmp_path):
    root = synthetic.make_covidqu(tmp_path, n=6, size=(64, 64), progress=False)
    data = covidqu_datalist(root)
    assert [e["class"] for e in data] == ["COVID-19"] * 2 + ["Non-COVID"] * 2 + ["Normal"] * 2
    for e in data:
        infection = np.asarray(Image.open(e["label"])) > 0
        lungs = np.asarray(Image.open(e["lung"])) > 0
        assert lungs.any() and not (infection & ~lungs).any()
        assert infection.any() == (e["class"] == "COVID-19")
    assert len(covidqu_datalist(root / "Infection Segmentation Data", classes=("Normal",))) == 2
    lung = tmp_path / "Infection Segmentation Data" / "Infection Segmentation Data" / "Train" / "Normal" / "lung masks"
    next(lung.iterdir()).unlink()
    with pytest.raises(DatasetLayoutError, match="no matching file in .*lung masks"):
        covidqu_datalist(root)
    with pytest.raises(ValueError, match="unknown classes"):
        covidqu_datalist(root, classes=("Flu",))


def test_covidqu_thesis_training_set_is_train_plus_val(tmp_path):
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        synthetic.make_covidqu(tmp_path, n=n, size=(32, 32), split=split, progress=False)
    train, val = covidqu_datalist(tmp_path, "train"), covidqu_datalist(tmp_path, "val")
    merged = covidqu_datalist(tmp_path, "train+val", classes=("COVID-19",))
    assert [e["id"] for e in merged] == [e["id"] for e in train + val if e["class"] == "COVID-19"]
    assert [e["id"] for e in merged] == ["covid_19_train_0000", "covid_19_train_0003", "covid_19_val_0000"]
    assert Path(merged[-1]["image"]).parts[-4:-1] == ("Val", "COVID-19", "images")
    test = covidqu_datalist(tmp_path, "test", classes=("COVID-19",))
    assert [e["id"] for e in test] == ["covid_19_test_0000"]
    for bad in ("train+train", "train+holdout", "trainval"):
        with pytest.raises(ValueError, match="joined by '\\+'"):
            covidqu_datalist(tmp_path, bad)


def test_command_line_writes_dataset_and_contact_sheet(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    synthetic_cli(["isic", "--root", str(tmp_path / "isic"), "--n", "3", "--size", "32", "48", "--sheet", str(sheet)])
    assert "wrote synthetic isic" in capsys.readouterr().out
    with Image.open(sheet) as im:
        assert im.size[0] > 3 * 48 and im.mode == "RGB"
    synthetic_cli(
        ["acdc", "--root", str(tmp_path / "acdc"), "--n", "1", "--size", "24", "24", "3", "--sheet", str(sheet)]
    )
    assert len(acdc_datalist(tmp_path / "acdc")) == 2


def _fail(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "dataset, make, read, writer",
    [
        ("acdc", lambda r: synthetic.make_acdc(r / "database", n=1, size=(24, 24, 3), n_frames=4, progress=False),
         acdc_datalist, "save_nifti_atomic"),
        ("idrid", lambda r: synthetic.make_idrid(r, n=1, size=(32, 48), progress=False), idrid_datalist,
         "save_image_atomic"),
        ("covidqu", lambda r: synthetic.make_covidqu(r, n=3, size=(32, 32), progress=False), covidqu_datalist,
         "save_image_atomic"),
    ],
)  # fmt: skip
def test_interrupted_generation_is_refused(tmp_path, monkeypatch, dataset, make, read, writer):
    with monkeypatch.context() as patch:
        patch.setattr(synthetic, writer, _fail)
        with pytest.raises(KeyboardInterrupt):
            make(tmp_path)
    split = {"covidqu": "train"}.get(dataset, "training")
    marker_root = tmp_path / "database" if dataset == "acdc" else tmp_path
    assert synthetic.is_partial(marker_root, dataset, split)
    with pytest.raises(DatasetLayoutError, match=f"synthetic {dataset} '{split}' generation .* was interrupted"):
        read(tmp_path)
    make(tmp_path)
    assert synthetic.is_complete(marker_root, dataset, split) and not synthetic.is_partial(marker_root, dataset, split)
    assert len(read(tmp_path)) > 0
