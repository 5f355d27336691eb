import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd
from PIL import Image

from monai_skinattr.transforms import LesionBBoxCrop, LesionBBoxCropD, LesionBBoxCropd, LesionBBoxCropDict


def _mask(shape, box):
    m = torch.zeros(1, *shape)
    m[:, box[0] : box[1], box[2] : box[3]] = 1
    return m


def test_box_grown_on_mask_grid_then_scaled_to_image():
    image = MetaTensor(torch.rand(3, 100, 200))
    crop = LesionBBoxCrop(offset=5)(image, _mask((50, 100), (20, 30, 40, 60)))
    # mask box rows 15..35, cols 35..65 -> x2 in the image
    assert crop.meta["lesion_bbox"] == [30, 70, 70, 130]
    assert torch.equal(crop, image[:, 30:70, 70:130])


def test_offset_counted_in_image_pixels():
    image = torch.rand(1, 100, 200)
    crop = LesionBBoxCrop(offset=5, offset_in="image")(image, _mask((50, 100), (20, 30, 40, 60)))
    # tight box rows 40..60, cols 80..120, then 5 image pixels
    assert crop.meta["lesion_bbox"] == [35, 75, 65, 125]


def test_tatl_default_offset_clipped_to_image():
    image = torch.rand(3, 384, 512)
    crop = LesionBBoxCrop()(image, _mask((384, 512), (10, 100, 400, 500)))
    assert crop.meta["lesion_bbox"] == [0, 360, 140, 512]
    assert crop.shape == (3, 140, 152)


def test_empty_mask_keeps_whole_image_with_warning():
    image = torch.rand(3, 40, 60)
    crop = LesionBBoxCrop()(image, torch.zeros(1, 20, 30))
    assert crop.shape == image.shape
    assert "empty" in crop.meta["lesion_bbox_warning"]
    assert crop.meta["lesion_bbox"] == [0, 0, 40, 60]


def test_largest_component_ignores_small_island():
    mask = _mask((100, 100), (40, 60, 40, 70))
    mask[:, 2:4, 2:4] = 1
    assert LesionBBoxCrop(offset=0)(torch.rand(1, 100, 100), mask).meta["lesion_bbox"] == [2, 2, 60, 70]
    crop = LesionBBoxCrop(offset=0, largest_component=True)(torch.rand(1, 100, 100), mask)
    assert crop.meta["lesion_bbox"] == [40, 40, 60, 70]


def test_probability_mask_threshold():
    mask = torch.full((1, 10, 10), 0.2)
    mask[:, 4:6, 4:6] = 0.9
    assert LesionBBoxCrop(offset=0)(torch.rand(1, 10, 10), mask).meta["lesion_bbox"] == [4, 4, 6, 6]


def test_inverse_puts_prediction_back_in_zero_canvas():
    pre = Compose([LesionBBoxCropd(keys=["image"], mask_key="lesion", offset=3)])
    image = MetaTensor(torch.rand(3, 120, 160))
    data = pre({"image": image, "lesion": _mask((60, 80), (10, 20, 30, 50))})
    assert data["image"].shape == (3, 32, 52)
    pred = data["image"][:1].clone()
    out = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=False)(
        {"pred": pred, "image": data["image"]}
    )
    restored = out["pred"]
    assert restored.shape == (1, 120, 160)
    assert torch.equal(restored[:, 14:46, 54:106], image[:1, 14:46, 54:106])
    restored[:, 14:46, 54:106] = 0
    assert restored.abs().sum() == 0


def test_dictionary_crops_each_key_on_its_own_grid_and_aliases():
    assert LesionBBoxCropD is LesionBBoxCropd and LesionBBoxCropDict is LesionBBoxCropd
    data = {"image": torch.rand(3, 80, 80), "half": torch.rand(1, 40, 40), "lesion": _mask((40, 40), (10, 20, 10, 20))}
    out = LesionBBoxCropd(keys=["image", "half"], mask_key="lesion", offset=2)(data)
    assert out["image"].shape == (3, 28, 28)
    assert out["half"].shape == (1, 14, 14)
    assert out["lesion"].shape == (1, 40, 40)


@pytest.mark.parametrize(
    "kwargs, call, message",
    [
        ({"offset": -1}, None, "offset must be an integer >= 0, got -1"),
        ({"offset_in": "pixels"}, None, "offset_in"),
        ({}, (torch.rand(1, 10, 10), torch.ones(1, 10, 10, 3)), "same number of spatial dims"),
    ],
)
def test_bad_input(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        LesionBBoxCrop(**kwargs)(*call) if call else LesionBBoxCrop(**kwargs)


def test_missing_mask_key():
    with pytest.raises(KeyError, match="lesion"):
        LesionBBoxCropd(keys="image", mask_key="lesion")({"image": torch.rand(1, 4, 4)})


def test_real_lesion_masks_predicted_at_384x512(real_task1_masks):
    """TATL: the lesion is predicted at 384x512, the box is grown there and scaled to the full photograph."""
    cropper = LesionBBoxCrop(offset=40)
    for path in sorted((real_task1_masks / "groundtruth").glob("*.png")):
        with Image.open(path) as im:
            full = np.asarray(im.convert("L")) > 128
            small = np.asarray(im.convert("L").resize((512, 384), Image.NEAREST)) > 128
        full_t = torch.from_numpy(full)[None].float()
        crop = cropper(full_t, torch.from_numpy(small)[None].float())
        y0, x0, y1, x1 = crop.meta["lesion_bbox"]
        h, w = full.shape
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w, path.name
        assert int((crop > 0).sum()) == int(full.sum()), f"{path.name}: lesion pixels fall outside the crop"
        ys, xs = np.nonzero(full)
        # the 40 px mask-grid offset is 40 * (h / 384) image pixels, less the half-pixel error of the resize
        margin_y, margin_x = 40 * h / 384, 40 * w / 512
        assert y0 == 0 or ys.min() - y0 >= margin_y - h / 384, path.name
        assert x1 == w or x1 - xs.max() >= margin_x - w / 512, path.name
