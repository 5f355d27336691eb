"""Every photo and mask read as the user meant it: each binary mask encoding through the real readers, the union builder
and a training batch; EXIF orientation; 16-bit photos; one report of every problem in a folder."""

import shutil

import itk
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, MetaTensor
from PIL import Image

from monai_skinattr.apps.tatl import load_transforms
from monai_skinattr.data import DatasetLayoutError, isic_datalist, synthetic
from monai_skinattr.data.images import MaskEncodingError, photo_image, read_mask, read_photo
from monai_skinattr.transforms import LoadPhoto, UnionMaskd, lesion_preprocessing
from tests.bundles.test_tatl_bundle import CONFIGS

IMAGES = "ISIC2018_Task1-2_Training_Input"
LESIONS = "ISIC2018_Task1_Training_GroundTruth"
ATTRS = "ISIC2018_Task2_Training_GroundTruth_v3"


def _encode(mask: np.ndarray, encoding: str) -> Image.Image:
    """The bool ``mask`` as a user's file may store it."""
    if encoding == "0/255":
        return Image.fromarray(mask.astype(np.uint8) * 255)
    if encoding == "0/1":
        return Image.fromarray(mask.astype(np.uint8))
    if encoding == "palette":
        im = Image.fromarray(mask.astype(np.uint8), mode="P")
        im.putpalette([0, 0, 0, 255, 0, 0])  # index 1 drawn red, as annotation tools do
        return im
    if encoding == "bool":
        return Image.fromarray(mask).convert("1")
    return Image.fromarray(mask.astype(np.uint16) * 65535)  # "16-bit": I;16


ENCODINGS = ("0/255", "0/1", "palette", "bool", "16-bit")


@pytest.fixture(scope="module")
def isic(tmp_path_factory):
    root = tmp_path_factory.mktemp("isic")
    synthetic.make_isic(root, n=6, size=(48, 64), progress=False)
    return root


def _reencoded(isic, tmp_path, encoding: str):
    root = tmp_path / encoding.replace("/", "_")
    shutil.copytree(isic, root)
    for path in [*(root / LESIONS).glob("*.png"), *(root / ATTRS).glob("*.png")]:
        mask = np.asarray(Image.open(path)) > 0
        _encode(mask, encoding).save(path)
    return root


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_binary_encoding_reads_the_same_masks(isic, tmp_path, encoding):
    root = _reencoded(isic, tmp_path, encoding)
    entries, reference = isic_datalist(root, task=2), isic_datalist(isic, task=2)  # the check accepts the encoding
    keys = [k for k in entries[0] if k not in ("image", "id")]
    total = 0
    for entry, ref in zip(entries, reference, strict=True):
        for key in keys:
            expected = np.asarray(Image.open(ref[key])) == 255
            assert np.array_equal(read_mask(entry[key]), expected), (encoding, key)
            total += int(expected.sum())
    assert total > 500  # the synthetic lesions and attributes are not empty

    # the union builder on what TATL's load reads: the same union, non-empty
    load = load_transforms(["image", *keys])
    union = UnionMaskd([k for k in keys if k != "lesion"], output_key="union")
    for entry, ref in zip(entries, reference, strict=True):
        got, want = union(_apply(load, entry)), union(_apply(load, ref))
        assert torch.equal(got["union"], want["union"]) and torch.equal(got["lesion"], want["lesion"])
    assert union(_apply(load, entries[0]))["lesion"].sum() > 0

    # a training batch of the lesion bundles' preprocessing (ISIC Task 1 labels)
    task1 = [{"image": e["image"], "label": e["lesion"]} for e in entries]
    ref1 = [{"image": e["image"], "label": e["lesion"]} for e in reference]
    pre = lesion_preprocessing([32, 32])
    batch = next(iter(DataLoader([_apply(pre, e) for e in task1], batch_size=6)))
    want = next(iter(DataLoader([_apply(pre, e) for e in ref1], batch_size=6)))
    assert torch.equal(batch["label"], want["label"]) and batch["label"].sum() > 0


def test_tatl_training_batch_reads_01_masks(isic, tmp_path):
    """The stage-2 (union) training batch of the TATL bundle, its masks stored 0/1, equals the 0/255 one."""
    batches = []
    for root in (_reencoded(isic, tmp_path, "0/1"), isic):
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / "common.json"), str(CONFIGS / "train_union.json")])
        parser.update({"dataset_dir": str(root), "bundle_root": str(tmp_path), "lesion_source": "ground_truth",
                       "lesion_size": [64, 64], "spatial_size": [32, 32], "val_fraction": 1})  # fmt: skip
        dataset = parser.get_parsed_content("train#dataset")
        batches.append(next(iter(DataLoader(dataset, batch_size=4)))["label"])
    assert torch.equal(batches[0], batches[1]) and batches[0].sum() > 0


def _apply(transforms, entry):
    data = dict(entry)
    for t in transforms:
        data = t(data)
    return data


@pytest.mark.parametrize(
    "values, found",
    [((0, 128, 255), "3 values (0, 128, 255)"), ((0, 1, 255), "3 values (0, 1, 255)"), ((0, 7), "2 values (0, 7)")],
)
def test_an_ambiguous_mask_is_refused_by_name(isic, tmp_path, values, found):
    root = tmp_path / "ambiguous"
    shutil.copytree(isic, root)
    path = root / ATTRS / "ISIC_0000002_attribute_streaks.png"
    arr = np.zeros((48, 64), np.uint8)
    for i, v in enumerate(values):
        arr[i * 8 : i * 8 + 8] = v
    Image.fromarray(arr).save(path)
    with pytest.raises(DatasetLayoutError) as err:
        isic_datalist(root, task=2)
    assert err.value.problems == [
        f"{path}: mask is not binary: {found}; expected 0 and one of 1, 255 or 65535 (0/1 greyscale or palette, "
        "0/255, bool, 16-bit 0/65535)"
    ]
    with pytest.raises(MaskEncodingError, match=f"{path}: mask is not binary"):
        read_mask(path)
    entry = {"image": str(root / IMAGES / "ISIC_0000002.jpg"), "streaks": str(path)}
    with pytest.raises(Exception, match="mask is not binary"):  # the loader itself refuses it too
        _apply(load_transforms(["image", "streaks"]), entry)


def test_colour_masks_black_and_one_colour(tmp_path):
    """IDRiD's lesions are red on black: read as foreground; two colours are refused."""
    arr = np.zeros((8, 8, 3), np.uint8)
    arr[2:4, 2:4] = (255, 0, 0)
    Image.fromarray(arr).save(tmp_path / "red.png")
    assert read_mask(tmp_path / "red.png").sum() == 4
    arr[5, 5] = (0, 255, 0)
    Image.fromarray(arr).save(tmp_path / "two.png")
    with pytest.raises(MaskEncodingError, match=r"black and 2 colours \(\(0, 255, 0\), \(255, 0, 0\)\)"):
        read_mask(tmp_path / "two.png")


def test_exif_rotated_photo_lines_up_with_its_upright_twin(tmp_path):
    """A JPEG stored 160 wide x 128 high with orientation 6 is displayed 128 x 160: it is read upright, checked
    against masks drawn upright, and a prediction goes back in that frame."""
    rng = np.random.default_rng(0)
    stored = (rng.random((128, 160, 3)) * 255).astype(np.uint8)
    stored[:32, :48] = 255  # a bright corner: top-left as stored, top-right once turned 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    root = tmp_path / "isic"
    synthetic.make_isic(root, n=1, size=(160, 128), progress=False)  # upright frame: 160 high, 128 wide
    photo = root / IMAGES / "ISIC_0000000.jpg"
    Image.fromarray(stored).save(photo, exif=exif, quality=95)
    with Image.open(photo) as im:
        decoded = np.asarray(im)
    twin = tmp_path / "twin.png"
    Image.fromarray(np.rot90(decoded, k=-1).copy()).save(twin)  # what a viewer shows, without a tag

    upright = read_photo(photo)
    assert upright.shape == (160, 128, 3) and np.array_equal(upright, np.asarray(Image.open(twin)))
    assert upright[:48, -32:].min() > 200  # the bright corner is top-right, as displayed
    entry = isic_datalist(root, task=2)[0]  # masks 160 x 128 match the displayed photo: no size problem
    loaded = _apply(load_transforms(["image", "lesion"]), entry)
    assert loaded["image"].shape == (3, 160, 128) == (3, *loaded["lesion"].shape[1:])
    assert torch.equal(loaded["image"], _apply(load_transforms(["image"]), {"image": str(twin)})["image"])
    load = LoadPhoto(long_side=64)  # decoded at 1/2 (80 x 64 upright), recorded at its displayed size
    img = load(str(photo))
    assert img.shape[:2] == (80, 64) and tuple(img.applied_operations[-1]["orig_size"]) == (160, 128)
    pred = MetaTensor(torch.zeros(1, 80, 64), applied_operations=img.applied_operations)
    assert load.inverse(pred).shape == (1, 160, 128)  # the prediction is written in the displayed frame


def test_sixteen_bit_photos_are_read_scaled_or_refused_by_name(isic, tmp_path):
    grey = Image.fromarray(np.array([[0, 257, 65535]], dtype=np.uint16))
    assert np.asarray(photo_image(grey)).tolist() == [[0, 1, 255]]
    root = tmp_path / "sixteen"
    shutil.copytree(isic, root)
    jpg = root / IMAGES / "ISIC_0000001.jpg"
    rgb16 = np.asarray(Image.open(jpg)).astype(np.uint16) * 257  # the same photo, 16 bits per channel (ITK writes it)
    itk.imwrite(itk.image_from_array(rgb16, is_vector=True), str(jpg.with_suffix(".png")))
    jpg.unlink()
    grey16 = root / IMAGES / "ISIC_0000002.png"
    grey = np.asarray(Image.open(root / IMAGES / "ISIC_0000002.jpg").convert("L"))
    Image.fromarray(grey.astype(np.uint16) * 257).save(grey16)
    (root / IMAGES / "ISIC_0000002.jpg").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        isic_datalist(root, task=2)
    assert err.value.problems == [f"{grey16}: image has 1 channel(s) (greyscale), expected 3 (RGB)"]
    grey16.unlink()
    shutil.copy(isic / IMAGES / "ISIC_0000002.jpg", root / IMAGES)
    entries = isic_datalist(root, task=2)
    assert entries[1]["image"].endswith("ISIC_0000001.png")  # read, and paired with its six masks
    assert np.array_equal(read_photo(entries[1]["image"]), np.asarray(Image.open(isic / IMAGES / "ISIC_0000001.jpg")))


def test_one_report_lists_layout_pairing_and_decoding_problems(isic, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(isic, root)
    shutil.copy(root / IMAGES / "ISIC_0000000.jpg", root / IMAGES / "ISIC_0000000.png")  # layout: two photos of one id
    (root / ATTRS / "ISIC_0000001_attribute_globules.png").unlink()  # pairing: a photo without its mask
    shutil.copy(root / LESIONS / "ISIC_0000002_segmentation.png", root / LESIONS / "ISIC_0000099_segmentation.png")
    jpg = root / IMAGES / "ISIC_0000003.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-200])  # decoding: a truncated photo
    streaks = root / ATTRS / "ISIC_0000004_attribute_streaks.png"
    Image.fromarray((np.arange(48 * 64) % 256).astype(np.uint8).reshape(48, 64)).save(streaks)  # decoding: not binary
    with pytest.raises(DatasetLayoutError) as err:
        isic_datalist(root, task=2)
    problems = err.value.problems
    assert len(problems) == 5, problems
    assert (
        problems[0] == f"{root / IMAGES / 'ISIC_0000000.png'}: a second photo of ISIC_0000000 (also ISIC_0000000.jpg)"
    )
    assert problems[1] == f"{root / LESIONS / 'ISIC_0000099_segmentation.png'}: mask without a matching image"
    assert problems[2] == f"ISIC_0000001.jpg: no 'globules' mask in {root / ATTRS}"
    assert problems[3].startswith(f"{jpg}: unreadable image (image file is truncated")
    assert problems[4].startswith(f"{streaks}: mask is not binary: 256 values (0, 1, 2, 3, 4, 5, 6, 7, ...)")
