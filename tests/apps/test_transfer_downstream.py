"""The transfer study's downstream parts: splits, preprocessing, per-class scoring, IDRiD full-image inference, the
network built from a pretrained encoder."""

import math

import numpy as np
import pytest
import torch
from monai.transforms import Compose

from monai_skinattr.apps.transfer import (
    ClassChannel,
    augmentation,
    downstream_splits,
    encoder_frozen,
    eval_postprocessing,
    expand,
    inference_datalist,
    inferer,
    preprocessing,
)
from monai_skinattr.data import DatasetLayoutError
from monai_skinattr.metrics import PooledDiceMetric
from monai_skinattr.networks import prepare_network, thesis_network
from monai_skinattr.transforms import StitchTiles, TileGrid

TINY_UNET = {"features": [4, 8, 8, 8, 8]}
#: the thesis' IDRiD geometry divided by 7: 160x320 images, windows of 64 at stride 16 (119), test tiles of 32 (50)
IDRID = {"idrid_size": (160, 320), "idrid_window": 64, "idrid_stride": 16}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    params = {
        "acdc": {"n": 5, "size": [40, 48, 4], "seed": 0},
        "covidqu": {"n": 12, "size": [48, 48], "seed": 0},
        "idrid": {"n": 3, "size": [80, 160], "seed": 0},
    }
    return {name: downstream_splits(name, root / name, root / name, p) for name, p in params.items()}


def test_splits_follow_the_thesis_and_never_mix(data):
    acdc = data["acdc"]
    patients = {k: {e["patient"] for e in v} for k, v in acdc.items()}
    assert len(patients["validation"]) == 1 and len(patients["training"]) == 4  # whole patients held out
    assert not patients["validation"] & patients["training"] and all(int(p[-3:]) > 100 for p in patients["test"])
    assert len(acdc["training"]) == 8 and {e["phase"] for e in acdc["training"]} == {"ED", "ES"}
    covid = data["covidqu"]
    assert all(e["class"] == "COVID-19" for v in covid.values() for e in v)
    train_ids = {e["id"] for e in covid["training"] + covid["validation"]}
    assert len(train_ids) == 8 and {i.split("_")[2] for i in train_ids} == {"train", "val"}  # Train + Val
    assert {e["id"].split("_")[2] for e in covid["test"]} == {"test"}
    idrid = data["idrid"]
    assert [len(idrid[k]) for k in ("training", "validation", "test")] == [2, 1, 3]
    assert not {e["id"] for e in idrid["validation"]} & {e["id"] for e in idrid["training"]}


def test_split_errors(tmp_path):
    with pytest.raises(ValueError, match="dataset_name"):
        downstream_splits("isic", tmp_path, tmp_path)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        downstream_splits("acdc", tmp_path / "missing", tmp_path / "synthetic")


def test_acdc_slices_and_labels_never_interpolated(data):
    samples = expand(data["acdc"]["training"], preprocessing("acdc", "train", (32, 32)))
    assert len(samples) == 8 * 4 and {s["slice_index"] for s in samples} == {0, 1, 2, 3}
    for s in samples:
        assert s["image"].shape == (1, 32, 32) and 0 <= s["image"].min() and s["image"].max() <= 1
        assert set(torch.unique(s["label"]).tolist()) <= {0, 1, 2, 3}
    aug = Compose(augmentation("acdc", (32, 32)))
    aug.set_random_state(0)
    out = [aug(s) for s in samples[:6]]
    assert all(o["image"].shape == (3, 32, 32) and o["image"].dtype == torch.float32 for o in out)
    assert all(set(torch.unique(o["label"]).tolist()) <= {0, 1, 2, 3} for o in out)
    rotate = aug.transforms[0].rand_rotate
    angles = [(rotate.randomize(None), rotate.x)[1] for _ in range(200)]
    assert 0 <= min(angles) < 0.1 and math.pi - 0.1 < max(angles) <= math.pi  # U[0, pi]
    slices = Compose(preprocessing("acdc", "eval", (32, 32)))(data["acdc"]["test"][0])
    assert len(slices) == 4 and slices[0]["image"].shape == (3, 32, 32)  # grey repeated to 3 channels
    whole = Compose(preprocessing("acdc", "infer", (32, 32), label=False))({"image": data["acdc"]["test"][0]["image"]})
    assert whole["image"].shape == (3, 32, 32, 4)


def test_covidqu_preprocessing(data):
    entry = data["covidqu"]["test"][0]
    out = Compose(preprocessing("covidqu", "eval", (32, 32)))(entry)
    assert out["image"].shape == (3, 32, 32) and set(torch.unique(out["label"]).tolist()) <= {0, 1}
    assert torch.allclose(out["image"][0], out["image"][1] * 0.224 / 0.229 + (0.456 - 0.485) / 0.229, atol=1e-5)


def test_idrid_windows_crops_and_jitter(data):
    samples = expand(data["idrid"]["training"], preprocessing("idrid", "train", (32, 32), **IDRID))
    assert len(samples) == 2 * 119  # the thesis' 119 windows per image
    assert samples[0]["image"].shape == (3, 64, 64) and samples[0]["image"].dtype == torch.uint8
    aug = Compose(augmentation("idrid", (32, 32), IDRID["idrid_window"]))
    aug.set_random_state(0)
    full = {**samples[0], "image": torch.full((3, 64, 64), 200, dtype=torch.uint8), "label": torch.ones(1, 64, 64)}
    for _ in range(20):
        out = aug(full)
        assert out["image"].shape == (3, 32, 32) and out["label"].shape == (1, 32, 32)
        assert bool((out["label"] == 1).all())  # the rotated square never leaves the window: no padding
    labels = torch.cat([aug(s)["label"].flatten() for s in samples[:20]])
    assert set(torch.unique(labels).tolist()) <= {0, 1}


def test_idrid_test_image_is_50_tiles_stitched(data):
    image = Compose(preprocessing("idrid", "eval", (32, 32), **IDRID))(data["idrid"]["test"][0])
    assert image["image"].shape == (3, 160, 320) and image["label"].shape == (1, 160, 320)
    calls = []

    def net(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return x[:, :1] * 2 + 1

    pred = inferer("idrid", (32, 32), sw_batch_size=7)(image["image"][None], net)
    assert pred.shape == (1, 1, 160, 320) and sum(calls) == 50
    tiles = TileGrid(32, 32)(image["image"])
    stitched = StitchTiles()([t[:1] * 2 + 1 for t in tiles])
    assert len(tiles) == 50 and torch.allclose(pred[0], stitched)


def test_class_channel_scores_one_class():
    # three classes over two 1x4 images; class 2: TP 2, FP 1, FN 1
    y = torch.tensor([[0, 1, 1, 2], [0, 0, 2, 2]])
    p = torch.tensor([[0, 1, 2, 2], [0, 0, 2, 1]])
    onehot = lambda v: torch.nn.functional.one_hot(v, 4).permute(0, 2, 1)[..., None].float()  # noqa: E731
    channel = ClassChannel(2)(
        [{"pred": onehot(p)[0], "label": onehot(y)[0]}, {"pred": onehot(p)[1], "label": onehot(y)[1]}]
    )
    one = PooledDiceMetric(include_background=True)
    one(*channel)
    assert float(one.aggregate()) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_eval_postprocessing_binary_and_multiclass():
    binary = Compose(eval_postprocessing(2))(
        {"pred": torch.tensor([[[-1.0, 2.0]]]), "label": torch.tensor([[[0.0, 1.0]]])}
    )
    assert binary["pred"].tolist() == [[[1.0, 0.0]], [[0.0, 1.0]]] and binary["target"].tolist() == [[[0.0, 1.0]]]
    multi = Compose(eval_postprocessing(3))(
        {"pred": torch.tensor([[[0.0]], [[5.0]], [[1.0]]]), "label": torch.tensor([[[2.0]]])}
    )
    assert multi["pred"].flatten().tolist() == [0, 1, 0] and multi["label"].flatten().tolist() == [0, 0, 1]
    assert multi["logits"].shape == (3, 1, 1)


def test_encoder_checkpoint_round_trip_and_decoder_mode(tmp_path):
    torch.manual_seed(0)
    pretrained = thesis_network("unet", out_channels=4, **TINY_UNET).encoder
    path = tmp_path / "encoder_epoch005.pt"
    torch.save(pretrained.state_dict(), path)
    net = thesis_network("unet", out_channels=4, **TINY_UNET)
    net = prepare_network(net, str(path), frozen=encoder_frozen("decoder"), part="encoder")
    for key, value in pretrained.state_dict().items():
        assert torch.equal(net.encoder.state_dict()[key], value), key
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert all(p.requires_grad for p in net.decoder.parameters())
    net.train()
    assert not net.encoder.training  # BatchNorm statistics stay the pretrained ones
    full = prepare_network(thesis_network("unet", out_channels=4, **TINY_UNET), "", frozen=encoder_frozen("full"))
    assert all(p.requires_grad for p in full.parameters())
    with pytest.raises(ValueError, match="does not fit|lacks"):
        swin = thesis_network("swin", out_channels=1, embed_dim=12, num_heads=[1, 1, 1, 1])
        prepare_network(swin, str(path), part="encoder")
    with pytest.raises(ValueError, match="mode"):
        encoder_frozen("encoder")


def test_inference_datalist(data, tmp_path):
    acdc_root = data["acdc"]["test"][0]["image"].split("/testing/")[0]
    files = inference_datalist("acdc", acdc_root)
    assert len(files) == 10 and all("_gt" not in f["image"] and "/testing/" in f["image"] for f in files)
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    assert inference_datalist("covidqu", tmp_path) == [{"image": str(tmp_path / "a.png")}]
    with pytest.raises(DatasetLayoutError, match="nothing|no acdc"):
        inference_datalist("acdc", tmp_path)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        inference_datalist("idrid", tmp_path / "missing")


def test_expand_flattens_lists_only():
    data = [{"x": 1}, {"x": 2}]
    assert expand(data, [lambda d: [d, {**d, "copy": True}]]) == [
        {"x": 1},
        {"x": 1, "copy": True},
        {"x": 2},
        {"x": 2, "copy": True},
    ]
    assert expand(data, [lambda d: {**d, "y": 0}]) == [{"x": 1, "y": 0}, {"x": 2, "y": 0}]
    assert np.all([isinstance(s, dict) for s in expand(data, [lambda d: d])])
