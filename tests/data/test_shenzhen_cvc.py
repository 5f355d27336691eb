import logging
import re
import shlex
import shutil

import numpy as np
import pytest
from PIL import Image

from monai_skinattr.data import DatasetLayoutError, carve_validation, cvc_colondb_datalist, shenzhen_datalist, synthetic
from monai_skinattr.data.synthetic import main as synthetic_cli


@pytest.fixture(scope="module")
def shenzhen(tmp_path_factory):
    return synthetic.make_shenzhen(tmp_path_factory.mktemp("shenzhen"), n=4, size=(64, 64), progress=False)


@pytest.fixture(scope="module")
def cvc(tmp_path_factory):
    return synthetic.make_cvc_colondb(tmp_path_factory.mktemp("cvc"), n=11, size=(40, 48), progress=False)


def _masks_ok(data, shape):
    for e in data:
        image, mask = np.asarray(Image.open(e["image"])), np.asarray(Image.open(e["label"]))
        assert image.shape[:2] == mask.shape == shape
        assert set(np.unique(mask)) == {0, 255}


def test_shenzhen_reads_back(shenzhen):
    data = shenzhen_datalist(shenzhen)
    assert [e["id"] for e in data] == ["CHNCXR_0001_0", "CHNCXR_0002_0", "CHNCXR_0003_1", "CHNCXR_0004_1"]
    assert all(set(e) == {"image", "label", "id"} for e in data)
    assert data[0]["image"].endswith("CXR_png/CHNCXR_0001_0.png")
    assert data[0]["label"].endswith("mask/CHNCXR_0001_0_mask.png")
    assert np.asarray(Image.open(data[0]["image"])).ndim == 2  # grey-scale radiographs
    _masks_ok(data, (64, 64))
    assert synthetic.is_complete(shenzhen, "shenzhen", "training")


def test_shenzhen_missing_masks_skipped_or_reported(shenzhen, tmp_path, caplog):
    root = shutil.copytree(shenzhen, tmp_path / "sz")
    (root / "mask" / "CHNCXR_0002_0_mask.png").unlink()
    Image.new("L", (8, 8)).save(root / "CXR_png" / "MCUCXR_0001_0.png")  # Montgomery files are ignored
    with caplog.at_level(logging.INFO, logger="monai_skinattr.data.shenzhen"):
        assert [e["id"] for e in shenzhen_datalist(root)] == ["CHNCXR_0001_0", "CHNCXR_0003_1", "CHNCXR_0004_1"]
    assert "1 of 4 images have no lung mask" in caplog.text
    with pytest.raises(DatasetLayoutError, match="CHNCXR_0002_0.png: no lung mask CHNCXR_0002_0_mask.png"):
        shenzhen_datalist(root, missing="error")
    (root / "mask").rename(root / "masks")  # the other release's folder name
    assert len(shenzhen_datalist(root)) == 3
    (root / "CXR_png" / "CHNCXR_0001_0.png").unlink()
    with pytest.raises(DatasetLayoutError, match="CHNCXR_0001_0_mask.png: mask without a matching image"):
        shenzhen_datalist(root)
    with pytest.raises(ValueError, match="missing must be"):
        shenzhen_datalist(root, missing="drop")


def test_shenzhen_bad_files_are_named(shenzhen, tmp_path):
    root = shutil.copytree(shenzhen, tmp_path / "sz")
    Image.new("L", (32, 64)).save(root / "mask" / "CHNCXR_0001_0_mask.png")
    Image.fromarray(np.arange(64 * 64).reshape(64, 64).astype(np.uint8)).save(root / "mask" / "CHNCXR_0003_1_mask.png")
    image = root / "CXR_png" / "CHNCXR_0004_1.png"
    image.write_bytes(image.read_bytes()[:100])
    with pytest.raises(DatasetLayoutError) as err:
        shenzhen_datalist(root)
    problems = "\n".join(err.value.problems)
    assert "CHNCXR_0001_0_mask.png: mask size (64, 32) differs from image size (64, 64)" in problems
    assert "CHNCXR_0003_1_mask.png: mask is not binary" in problems
    assert "CHNCXR_0004_1.png: unreadable image" in problems
    assert len(shenzhen_datalist(root, validate=False)) == 4
    shutil.rmtree(root / "mask")
    with pytest.raises(FileNotFoundError, match="missing Shenzhen folder .*mask"):
        shenzhen_datalist(root)


def test_cvc_reads_back(cvc):
    data = cvc_colondb_datalist(cvc)
    assert [e["id"] for e in data] == [str(i) for i in range(1, 12)]  # natural order: 2 before 10
    assert all(set(e) == {"image", "label", "id"} for e in data)
    assert data[0]["image"].endswith("CVC-ColonDB/images/1.png")
    assert data[0]["label"].endswith("CVC-ColonDB/masks/1.png")
    assert np.asarray(Image.open(data[0]["image"])).shape == (40, 48, 3)
    _masks_ok(data, (40, 48))
    assert cvc_colondb_datalist(cvc / "CVC-ColonDB") == data  # the dataset folder itself is accepted too
    train, test = carve_validation(data, fraction=3, seed=0)
    assert len(train) == 8 and len(test) == 3


def test_cvc_formats_and_bad_files(cvc, tmp_path):
    folder = shutil.copytree(cvc / "CVC-ColonDB", tmp_path / "CVC-ColonDB")
    images, masks = folder / "images", folder / "masks"
    Image.open(images / "2.png").save(images / "2.bmp")
    (images / "2.png").unlink()
    Image.open(masks / "2.png").save(masks / "2.tif")
    (masks / "2.png").unlink()
    assert cvc_colondb_datalist(tmp_path)[1]["image"].endswith("images/2.bmp")

    Image.open(images / "3.png").convert("RGB").save(images / "3.jpg")  # a second file named "3"
    (masks / "4.png").rename(tmp_path / "4.png")
    Image.new("L", (48, 40)).save(masks / "12.png")
    with pytest.raises(DatasetLayoutError) as err:
        cvc_colondb_datalist(tmp_path)
    problems = "\n".join(err.value.problems)
    assert "images/3.png: two files named '3' (3.jpg, 3.png)" in problems
    assert "images/4.png: no mask named '4'" in problems
    assert "masks/12.png: mask without a matching frame" in problems

    (images / "3.jpg").unlink()
    (masks / "12.png").unlink()
    (tmp_path / "4.png").rename(masks / "4.png")
    Image.new("L", (48, 48)).save(masks / "5.png")
    Image.new("L", (48, 40), 7).save(masks / "6.png")
    (images / "7.png").write_bytes(b"not an image")
    with pytest.raises(DatasetLayoutError) as err:
        cvc_colondb_datalist(tmp_path)
    problems = "\n".join(err.value.problems)
    assert "masks/5.png: mask size (48, 48) differs from image size (40, 48)" in problems
    assert "masks/6.png: mask is not binary" in problems
    assert "images/7.png: unreadable image" in problems
    shutil.rmtree(masks)
    with pytest.raises(FileNotFoundError, match="missing CVC-ColonDB folder .*masks"):
        cvc_colondb_datalist(tmp_path)


def _fail(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "dataset, make, read",
    [
        ("shenzhen", synthetic.make_shenzhen, shenzhen_datalist),
        ("cvc_colondb", synthetic.make_cvc_colondb, cvc_colondb_datalist),
    ],
)
def test_interrupted_generation_is_refused_until_rerun(tmp_path, monkeypatch, dataset, make, read):
    with monkeypatch.context() as patch:
        patch.setattr(synthetic, "save_image_atomic", _fail)
        with pytest.raises(KeyboardInterrupt):
            make(tmp_path, n=2, size=(32, 32), progress=False)
    assert synthetic.is_partial(tmp_path, dataset, "training")
    with pytest.raises(
        DatasetLayoutError, match=f"synthetic {dataset} 'training' generation .* was interrupted"
    ) as err:
        read(tmp_path)
    command = shlex.split(re.search(r"rerun `python -m monai_skinattr.data.synthetic (.*?)`", str(err.value)).group(1))
    synthetic_cli(command)  # the command the error gives rewrites the folder
    assert synthetic.is_complete(tmp_path, dataset, "training") and not synthetic.is_partial(
        tmp_path, dataset, "training"
    )
    assert len(read(tmp_path)) == 2


def test_command_line_and_determinism(tmp_path, capsys):
    synthetic_cli(["cvc_colondb", "--root", str(tmp_path / "a"), "--n", "2", "--size", "32", "40", "--seed", "3"])
    assert "wrote synthetic cvc_colondb" in capsys.readouterr().out
    synthetic.make_cvc_colondb(tmp_path / "b", n=2, size=(32, 40), seed=3, progress=False)
    synthetic.make_cvc_colondb(tmp_path / "c", n=2, size=(32, 40), seed=4, progress=False)
    synthetic_cli(["shenzhen", "--root", str(tmp_path / "d"), "--n", "2", "--size", "32", "32", "--seed", "3"])
    synthetic.make_shenzhen(tmp_path / "e", n=2, size=(32, 32), seed=3, progress=False)
    synthetic.make_shenzhen(tmp_path / "f", n=2, size=(32, 32), seed=4, progress=False)
    for read, same, other in ((cvc_colondb_datalist, "ab", "c"), (shenzhen_datalist, "de", "f")):
        lists = [read(tmp_path / name) for name in same + other]
        for key in ("image", "label"):
            files = [[open(e[key], "rb").read() for e in data] for data in lists]
            assert files[0] == files[1] and files[0] != files[2]
    with pytest.raises(SystemExit):
        synthetic_cli(["shenzhen", "--root", str(tmp_path / "g"), "--split", "test"])
    assert "has no splits" in capsys.readouterr().err
