"""Deep input transfer: gradient perturbation, its dataset writer, the test-time network and Table 1's statistics."""

import csv
import json

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from torch import nn

from monai_skinattr.apps.input_transfer import (
    TranslateThenSegment,
    assemble_model,
    gradient_perturbation,
    gradient_step,
    label_mismatch,
    mean_and_standard_error,
    perturb_dataset,
    perturbed_datalist,
    pipeline_plan,
    segmentation_rates,
    target_loading,
)
from monai_skinattr.data import DatasetLayoutError, image_datalist, isic_datalist, synthetic
from monai_skinattr.networks import FCDenseNet, UNet
from monai_skinattr.transforms import lesion_preprocessing
from tests.bundles.test_input_transfer_bundle import RUNS


def _disks(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy grey images holding one brighter disk, and the disk masks."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    images, labels = [], []
    for _ in range(n):
        c = torch.randint(8, 24, (2,), generator=g).float()
        r = 4 + 6 * torch.rand(1, generator=g)
        mask = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 < r**2).float()
        images.append((0.3 + 0.3 * mask + 0.25 * torch.randn(32, 32, generator=g)).expand(3, 32, 32))
        labels.append(mask[None])
    return torch.stack(images), torch.stack(labels)


@pytest.fixture(scope="module")
def trained():
    """A tiny two-class segmenter trained to find the disks (it gets a few percent of pixels wrong)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1))
    images, labels = _disks(32, 0)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        loss = nn.functional.cross_entropy(net(images), labels[:, 0].long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_step_is_linf_normalised(trained):
    images, labels = _disks(4, 1)
    for gamma in (0.1, 1.0):
        stepped, logits = gradient_step(trained, images, labels, gamma=gamma)
        step = (stepped - images).flatten(1).abs().amax(dim=1)
        assert torch.allclose(step, torch.full((4,), gamma), atol=1e-6)
        with torch.no_grad():
            assert torch.equal(logits, trained(images))


def test_overshooting_steps_keep_the_best_iterate(trained):
    images, labels = _disks(4, 1)
    with torch.no_grad():
        before = label_mismatch(trained(images), labels)
    out = gradient_perturbation(trained, images, labels, gamma=5.0, iterations=10)  # steps far too large
    with torch.no_grad():
        after = label_mismatch(trained(out.images), labels)
    assert (after <= before).all()
    kept = out.iterations == 0
    assert torch.equal(out.images[kept], images[kept])


def test_perturbation_raises_dice_and_stops_when_right(trained):
    images, labels = _disks(4, 1)
    out = gradient_perturbation(trained, images, labels, gamma=0.1, iterations=30)
    with torch.no_grad():
        before = segmentation_rates(trained(images), labels)["dice"]
        after = segmentation_rates(trained(out.images), labels)["dice"]
        wrong = label_mismatch(trained(out.images), labels)
    assert (after > before).all(), (before, after)
    assert (out.iterations < 30).all() and (wrong == 0).all()  # every image stopped early, segmented exactly
    assert not torch.equal(out.images, images) and images.equal(_disks(4, 1)[0])  # the input is not modified


def test_early_stop_on_an_already_correct_image(trained):
    images, _ = _disks(3, 2)
    with torch.no_grad():
        own = trained(images).argmax(dim=1, keepdim=True)  # the network's own answer is "the ground truth"
    out = gradient_perturbation(trained, images, own, gamma=1.0, iterations=100)
    assert out.iterations.tolist() == [0, 0, 0] and torch.equal(out.images, images)


def test_tolerance_and_training_mode_are_respected(trained):
    images, labels = _disks(2, 3)
    trained.train()
    out = gradient_perturbation(trained, images, labels, gamma=0.1, iterations=5, tolerance=0.5)
    assert trained.training and out.iterations.tolist() == [0, 0]  # under half the pixels are wrong
    trained.eval()


def test_perturbation_rejects_bad_input(trained):
    images, labels = _disks(2, 3)
    with pytest.raises(ValueError, match="labels must be"):
        gradient_perturbation(trained, images, labels[:, :, :16])
    with pytest.raises(ValueError, match="gamma > 0"):
        gradient_perturbation(trained, images, labels, gamma=0.0)
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gradient_perturbation(trained, bad, labels)
    with pytest.raises(ValueError, match="at least 2 classes"):
        gradient_perturbation(nn.Conv2d(3, 1, 1), images, labels)


def test_segmentation_rates_known_answers():
    labels = torch.zeros(3, 1, 2, 4)
    labels[0, 0, 0, :2] = 1  # 2 foreground pixels
    labels[1, 0, 0, :] = 1  # 4
    pred = torch.zeros(3, 1, 2, 4)
    pred[0, 0, 0, :3] = 1  # TP 2, FP 1, FN 0, TN 5
    pred[1, 0, 1, 0] = 1  # TP 0, FP 1, FN 4, TN 3
    logits = torch.cat([1 - pred, pred], dim=1)  # image 2: both empty
    rates = segmentation_rates(logits, labels)
    assert rates["dice"].tolist() == pytest.approx([0.8, 0.0, 1.0])
    assert rates["fpr"].tolist() == pytest.approx([1 / 6, 1 / 4, 0.0])
    assert rates["fnr"][:2].tolist() == pytest.approx([0.0, 1.0]) and torch.isnan(rates["fnr"][2])
    assert mean_and_standard_error([0.5, 0.7, float("nan")]) == pytest.approx((0.6, 0.1, 2))
    assert mean_and_standard_error([0.4]) == (0.4, 0.0, 1)


def test_translate_then_segment_trains_only_the_translator():
    translator = FCDenseNet(3, 3, down_blocks=(2, 2), bottleneck_layers=2, growth_rate=4, first_channels=8)
    segmenter = UNet(in_channels=3, out_channels=2, features=(4, 8, 16, 32, 64))
    net = TranslateThenSegment(translator, segmenter).train()
    assert not segmenter.training and translator.training
    bn = next(m for m in segmenter.modules() if isinstance(m, nn.BatchNorm2d))
    stats = bn.running_mean.clone()
    out = net(torch.rand(2, 3, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 2, 64, 64)
    assert all(p.grad is None for p in segmenter.parameters())
    assert all(p.grad is not None for p in translator.parameters())
    assert torch.equal(stats, bn.running_mean)  # BN statistics untouched
    scripted = torch.jit.script(net.eval())
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(scripted(x), net(x), atol=1e-5)


@pytest.fixture
def lesions(tmp_path):
    root = synthetic.make_isic(tmp_path / "isic", n=5, size=(40, 48), seed=0, year=2017, split="training")
    return isic_datalist(root, task=1, split="training")


def test_perturb_dataset_writes_floats_and_resumes(trained, lesions, tmp_path):
    transform = Compose(lesion_preprocessing([32, 32], normalization="none"))
    out = tmp_path / "perturbed"
    pairs = perturb_dataset(trained, lesions, transform, out, gamma=1.0, iterations=3, batch_size=2)
    assert [p["target"] for p in pairs] == [str(out / f"{e['id']}.npy") for e in lesions]
    arrays = {e["id"]: np.load(out / f"{e['id']}.npy") for e in lesions}
    assert all(a.shape == (3, 32, 32) and a.dtype == np.float32 for a in arrays.values())
    assert min(a.min() for a in arrays.values()) < 0 or max(a.max() for a in arrays.values()) > 1  # left [0, 1]
    with open(out / "perturbation.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == sorted(arrays) and all(0 <= int(r["iterations"]) <= 3 for r in rows)
    # an interrupted run: one image's file is gone; only that one is perturbed again, identically
    stamp = {k: (out / f"{k}.npy").stat().st_mtime_ns for k in arrays}
    first = lesions[0]["id"]
    (out / f"{first}.npy").unlink()
    with pytest.raises(FileNotFoundError, match="lacks the perturbed images of 1 of 5"):
        perturbed_datalist(out, lesions)
    perturb_dataset(trained, lesions, transform, out, gamma=1.0, iterations=3, batch_size=2)
    assert np.allclose(np.load(out / f"{first}.npy"), arrays[first], atol=1e-5)  # batched alone: rounding only
    assert all((out / f"{k}.npy").stat().st_mtime_ns == stamp[k] for k in arrays if k != first)
    assert not list(out.glob(".partial.*"))
    with pytest.raises(ValueError, match="perturbed with"):
        perturb_dataset(trained, lesions, transform, out, gamma=0.1, iterations=3)
    # the translator's training pairs load as channel-first float tensors, the perturbed image as the label
    load = Compose(lesion_preprocessing([32, 32], label=False, normalization="none") + target_loading("label"))
    item = load(perturbed_datalist(out, lesions, key="label")[0])
    assert item["image"].shape == item["label"].shape == (3, 32, 32)
    assert np.array_equal(item["label"].numpy(), np.load(out / f"{first}.npy"))
    # not resuming (the runner redoes the run, e.g. after the segmenter changed): the folder starts again
    perturb_dataset(trained, lesions[1:], transform, out, gamma=0.1, iterations=3, batch_size=2, resume=False)
    assert sorted(p.stem for p in out.glob("*.npy")) == sorted(e["id"] for e in lesions[1:])
    assert json.loads((out / "perturbation.json").read_text())["gamma"] == 0.1


def test_assemble_model_joins_the_two_checkpoints(tmp_path):
    translator = FCDenseNet(3, 3, down_blocks=(2, 2), bottleneck_layers=2, growth_rate=4, first_channels=8)
    segmenter = UNet(in_channels=3, out_channels=2, features=(4, 8, 16, 32, 64))
    torch.save(translator.state_dict(), tmp_path / "translator_gp_ts.pt")
    torch.save(segmenter.state_dict(), tmp_path / "segmenter.pt")
    path = assemble_model(tmp_path, "gp_ts")
    net = TranslateThenSegment(
        FCDenseNet(3, 3, down_blocks=(2, 2), bottleneck_layers=2, growth_rate=4, first_channels=8),
        UNet(in_channels=3, out_channels=2, features=(4, 8, 16, 32, 64)),
    )
    net.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), segmenter.eval()(translator.eval()(x)))
    with pytest.raises(FileNotFoundError, match="translator_gp_t.pt"):
        assemble_model(tmp_path, "gp_t")
    with pytest.raises(ValueError, match="variant must be one of"):
        assemble_model(tmp_path, "cyclegan")


def test_grey_photos_for_one_channel_segmenters(tmp_path):
    root = synthetic.make_shenzhen(tmp_path / "lungs", n=2, size=(32, 32), progress=False) / "CXR_png"
    assert [e["id"] for e in image_datalist(root, channels=1)] == ["CHNCXR_0001_0", "CHNCXR_0002_1"]
    with pytest.raises(DatasetLayoutError, match="CHNCXR_0001_0.png: image has 1 channel"):
        image_datalist(root)  # RGB is the default


def test_pipeline_plan_runs_the_stages_in_order():
    plan = pipeline_plan("b", "w/models", "w/eval", {"segmenter": 3, "translator": 2}, {"spatial_size": [64, 64]})
    assert str(plan.workdir) == "w/models"
    runs = {r.name: r for r in plan.runs}
    assert list(runs) == RUNS
    assert all(r.configs[0] == "common.json" and r.overrides["spatial_size"] == [64, 64] for r in plan.runs)
    assert runs["segmenter"].overrides["max_epochs"] == 3 and runs["translator_e2e"].overrides["max_epochs"] == 2
    assert runs["perturb_gp_t"].overrides["variant"] == "gp_t" and runs["assemble"].overrides["variant"] == "gp_ts"
    assert runs["evaluate"].configs == ["common.json", "inference.json", "evaluate.json"]
    assert runs["evaluate"].overrides["output_dir"].replace("\\", "/") == "w/eval/test"
    assert runs["table1"].overrides["output_dir"] == "w/eval"
