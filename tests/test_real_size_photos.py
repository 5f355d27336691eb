"""Large photos through the TATL cascade bundle: JPEGs decoded at a reduced scale (PIL ``draft``) with their original
size recorded, predictions resized back once, masks at the photo's size agreeing with the full-resolution path."""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, Invertd
from PIL import Image
from scipy import ndimage

from monai_skinattr.apps.tatl import TATLCascadeNet, TATLSegmenter, cascade_outputs, network_settings
from monai_skinattr.bundles import bundle_dir
from monai_skinattr.data.checks import draft
from monai_skinattr.transforms import LoadPhoto, LoadPhotod
from monai_skinattr.transforms.io import save_mask

BUNDLE = bundle_dir("tatl")
#: a cascade small enough for the CPU, trained (here: made) on photos sampled at 2 x lesion_size
SETTINGS = {"attributes": ["streaks"], "archs": ["unet"], "lesion_size": [64, 96], "crop_size": [64, 96], "offset": 5}
SETTINGS["photo_size"] = [128, 192]
#: inference.json overridden to feed each photo decoded in full at its own size (batch 1), TATL's crop from the original
FULL_RESOLUTION = {
    "preprocessing#transforms": "$monai_skinattr.apps.tatl.load_transforms(@load_keys)",
    "dataloader#batch_size": 1,
}


def smooth_photo(path: Path, height: int = 300, width: int = 400) -> np.ndarray:
    """A JPEG (quality 90) of a dark blurred lesion with a smooth texture on skin; returns the written pixels."""
    y, x = np.mgrid[:height, :width] / np.array([height, width])[:, None, None]
    lesion = np.clip(1.5 - 2.2 * np.hypot((y - 0.5) / 0.8, (x - 0.45) / 1.0) / 0.45, 0, 1)
    texture = 0.5 + 0.5 * np.sin(9 * x + 4 * np.cos(7 * y)) * np.cos(8 * y)
    skin, dark = np.array([205.0, 160, 140]), np.array([100.0, 65, 50])
    rgb = skin + (dark - skin) * lesion[..., None] * (0.7 + 0.3 * texture[..., None])
    Image.fromarray(rgb.astype(np.uint8)).save(path, quality=90)
    return np.asarray(Image.open(path))


def test_draft_loader_reduces_jpegs_and_records_the_original_size(tmp_path):
    full = smooth_photo(tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as im:
        assert draft(im, 1).size == (50, 38)  # 1/8, the smallest JPEG scale: ceil(400 / 8) x ceil(300 / 8)
    img = LoadPhoto(long_side=160)(tmp_path / "a.jpg")
    assert img.shape == (150, 200, 3)  # 1/2: long side 200 >= 160; 1/4 would be 100
    assert img.applied_operations[-1]["orig_size"] == (300, 400)
    halved = full.reshape(150, 2, 200, 2, 3).mean(axis=(1, 3))
    assert np.abs(img.numpy() - halved).mean() < 2  # the DCT's half scale is the 2 x 2 average, up to JPEG error
    assert LoadPhoto(long_side=0)(tmp_path / "a.jpg").shape == (300, 400, 3)
    assert LoadPhoto(long_side=400)(tmp_path / "a.jpg").shape == (300, 400, 3)  # no longer than long_side
    Image.fromarray(full).save(tmp_path / "a.png")
    assert LoadPhoto(long_side=160)(tmp_path / "a.png").shape == (300, 400, 3)  # only JPEGs have scales


def test_invertd_brings_predictions_back_to_the_original_size(tmp_path):
    smooth_photo(tmp_path / "a.jpg")
    pre = Compose([LoadPhotod("image", long_side=160), EnsureChannelFirstd("image")])
    d = pre({"image": str(tmp_path / "a.jpg")})
    assert d["image"].shape == (3, 150, 200)
    ramp = torch.linspace(0, 1, 200).expand(2, 150, 200)
    d["pred"] = MetaTensor(ramp.clone())
    out = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(dict(d))["pred"]
    assert out.shape == (2, 300, 400)
    expected = F.interpolate(ramp[None], size=(300, 400), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out.as_tensor(), expected)
    d["pred"] = MetaTensor((ramp > 0.5).float())
    nearest = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(dict(d))["pred"]
    assert set(nearest.unique().tolist()) == {0.0, 1.0} and nearest[0, 0, 200:].all() and not nearest[0, 0, :200].any()


def test_masks_are_written_as_lossless_greyscale_png(tmp_path):
    mask = (np.random.default_rng(0).random((30, 40)) > 0.5).astype(np.uint8) * 255
    save_mask(mask, tmp_path / "sub" / "m.png")
    with Image.open(tmp_path / "sub" / "m.png") as im:
        assert im.mode == "L" and np.array_equal(np.asarray(im), mask)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.png"]  # no temporary file left


@torch.no_grad()
def textured_cascade(models: Path, photo: Path) -> None:
    """Random weights whose output layers are rescaled so every map has median logit 0 on ``photo``: masks that
    follow the image (untouched random networks give constant maps, which would agree trivially)."""
    torch.manual_seed(0)
    net = TATLCascadeNet(**network_settings(SETTINGS)).eval()
    rgb = torch.from_numpy(np.asarray(Image.open(photo), np.float32) / 255).permute(2, 0, 1)[None]
    for module in net.modules():
        if isinstance(module, TATLSegmenter):
            logits = module(F.interpolate(rgb, size=SETTINGS["crop_size"], mode="bilinear", align_corners=False))
            scale = 2 / logits.std()
            module.net.head.weight.mul_(scale)
            module.net.head.bias.mul_(scale).sub_(logits.median() * scale)
    models.mkdir()
    torch.save(net.state_dict(), models / "model.pt")
    (models / "cascade.json").write_text(json.dumps(SETTINGS))


def run_bundle(photos: Path, models: Path, out: Path, **overrides) -> dict[str, np.ndarray]:
    wf = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "inference.json"),
        logging_file=False,
        workflow_type="infer",
        bundle_root=str(BUNDLE),
        dataset_dir=str(photos),
        models_dir=str(models),
        output_dir=str(out),
        **overrides,
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    paths = cascade_outputs(out, "ISIC_0000001", ["background", "lesion", "union", "streaks"])
    return {name: np.asarray(Image.open(path)) for name, path in paths.items()}


def test_cascade_bundle_writes_original_size_masks_close_to_the_full_resolution_path(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    smooth_photo(photos / "ISIC_0000001.jpg")
    textured_cascade(tmp_path / "models", photos / "ISIC_0000001.jpg")
    drafted = run_bundle(photos, tmp_path / "models", tmp_path / "draft", overlay_size=200)
    full = run_bundle(photos, tmp_path / "models", tmp_path / "full", overlay_size=0, **FULL_RESOLUTION)
    record = json.loads((tmp_path / "draft" / "cascade_run.json").read_text())
    assert record["photo_size"] == [128, 192] and record["overlay_size"] == 200
    assert drafted["overlay"].shape[1] == 2 * 200 + 4  # photo | prediction panels of 200 x 150, 4 px apart
    assert full["overlay"].shape[1] == 2 * 400 + 4
    for name in ("lesion", "union", "streaks"):
        assert drafted[name].shape == full[name].shape == (300, 400) and drafted[name].dtype == np.uint8
        assert set(np.unique(drafted[name])) <= {0, 255}
        assert 0.05 < (full[name] > 0).mean() < 0.95, name  # the masks follow the image: agreement is not trivial
        differ = drafted[name] != full[name]
        assert differ.mean() < 0.03, name  # measured 1.1 - 1.9 %
        truth = full[name] > 0
        from_edge = ndimage.distance_transform_edt(truth == ndimage.binary_erosion(truth))
        assert not (differ & (from_edge > 8)).any(), name  # only at the edges (measured: all within 6 px)


class _FixedLesion(torch.nn.Module):
    """A stage-1 stand-in that finds ``mask`` (on the Segment-Net grid) in every photo."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mask", torch.from_numpy(mask.astype(np.float32))[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask.expand(x.shape[0], -1, -1, -1)


def test_a_training_crop_is_the_crop_the_cascade_cuts_from_a_real_size_photo(tmp_path):
    """Training (the bundle's own stage-3 transforms) and the cascade (inference.json's preprocessing, then the
    network's box and roi_align crop) sample a 4000 x 3000 JPEG the same way, at TATL's default sizes."""
    smooth_photo(tmp_path / "ISIC_0000001.jpg", height=3000, width=4000)
    y, x = np.mgrid[:384, :512]
    lesion = ((y - 200) / 110.0) ** 2 + ((x - 230) / 150.0) ** 2 <= 1  # a predicted lesion on the 384 x 512 grid
    Image.fromarray(lesion.astype(np.uint8) * 255).save(tmp_path / "lesion.png")
    streaks = np.zeros((3000, 4000), np.uint8)
    streaks[1400:1500, 1500:1800] = 255
    Image.fromarray(streaks).save(tmp_path / "streaks.png")
    configs = BUNDLE / "configs"
    train = ConfigParser()
    train.read_config([str(configs / "common.json"), str(configs / "train_attribute.json")])
    train.update({"bundle_root": str(tmp_path), "attributes": ["streaks"], "attribute": "streaks"})
    entry = {"image": str(tmp_path / "ISIC_0000001.jpg"), "lesion": str(tmp_path / "lesion.png")}
    sample = Compose(train.get_parsed_content("train#deterministic_transforms"))(
        {**entry, "streaks": str(tmp_path / "streaks.png")}
    )
    infer = ConfigParser()
    infer.read_config(str(configs / "inference.json"))
    infer.update({"bundle_root": str(tmp_path), "models_dir": str(tmp_path / "models")})  # TATL's default settings
    photo = infer.get_parsed_content("preprocessing")(entry)["image"].as_tensor()
    assert photo.shape == (3, 768, 1024)  # photo_size: 2 x the Segment-Net grid
    net = TATLCascadeNet(["streaks"], archs=["unet"])
    net.lesion_net = _FixedLesion(lesion)
    with torch.no_grad():
        _, boxes = net.image_boxes(photo[None])
        crop = net.crop_images(photo[None], boxes)[0]
    trained_box = torch.tensor(sample["image"].meta["lesion_bbox"], dtype=torch.float32)
    box = boxes[0]
    extent = torch.cat([box[2:] - box[:2]] * 2)
    grid = torch.tensor([384.0, 512.0, 384.0, 512.0])
    assert (trained_box - box).abs().mul(grid / extent).max() <= 1  # within 1 px of the 384 x 512 crop grid
    assert sample["image"].shape == crop.shape == (3, 384, 512)
    assert (sample["image"].as_tensor() - crop).abs().mean() <= 1 / 255
