import numpy as np
import pytest
import torch
from ignite.engine import Engine
from isic_challenge_scoring import task2
from isic_challenge_scoring.segmentation import SegmentationScore
from monai.handlers import IgniteMetricHandler, from_engine
from PIL import Image

from monai_skinattr.data.checks import read_2d
from monai_skinattr.metrics import ISICTask1Metric, ISICTask2Metric, binarize, isic_task1_score, isic_task2_score

ATTRS = ("globules", "streaks", "pigment_network")


def _random_pairs(rng, n):
    """Masks of assorted sizes: blobs, noise, empty truth / empty prediction, perfect matches."""
    pairs = []
    for i in range(n):
        h, w = rng.integers(20, 60, size=2)
        truth = np.zeros((h, w), np.uint8)
        if i % 5:
            y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
            truth[y : y + rng.integers(3, h // 2), x : x + rng.integers(3, w // 2)] = 255
        if i % 7 == 0:
            pred = truth.copy()
        elif i % 6 == 0:
            pred = np.zeros_like(truth)
        else:
            pred = np.where(rng.random((h, w)) < 0.15, 255 - truth, truth).astype(np.uint8)
            pred = np.roll(pred, rng.integers(-3, 4), axis=int(rng.integers(0, 2)))
        pairs.append((truth, pred))
    return pairs


def _write(folder, name, mask):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(folder / name)


def test_task1_equals_official_package_on_random_masks(tmp_path):
    pairs = _random_pairs(np.random.default_rng(0), 30)
    for i, (t, p) in enumerate(pairs):
        _write(tmp_path / "gt", f"ISIC_{i:07d}_segmentation.png", t)
        _write(tmp_path / "pred", f"ISIC_{i:07d}_segmentation.png", p)
    official = SegmentationScore.from_dir(tmp_path / "gt", tmp_path / "pred").macro_average
    ours = isic_task1_score([t for t, _ in pairs], [p for _, p in pairs])
    for metric, value in ours.items():
        assert value == pytest.approx(official[metric], abs=1e-6), metric
    assert 0 < ours["threshold_jaccard"] < ours["jaccard"] < 1


def test_task1_equals_official_package_on_real_masks(real_task1_masks):
    gt, pred = real_task1_masks / "groundtruth", real_task1_masks / "prediction"
    official = SegmentationScore.from_dir(gt, pred).macro_average
    truths = [read_2d(p) for p in sorted(gt.glob("*.png"))]
    preds = [read_2d(pred / p.name.replace(".png", "_prediction.png")) for p in sorted(gt.glob("*.png"))]
    ours = isic_task1_score(truths, preds)
    for metric, value in ours.items():
        assert value == pytest.approx(official[metric], abs=1e-6), metric


def test_task2_equals_official_package(tmp_path):
    rng = np.random.default_rng(1)
    truths, preds = {}, {}
    for a in ATTRS:
        pairs = _random_pairs(rng, 12)
        truths[a], preds[a] = [t for t, _ in pairs], [p for _, p in pairs]
        for i, (t, p) in enumerate(pairs):
            _write(tmp_path / "gt", f"ISIC_{i:07d}_attribute_{a}.png", t)
            _write(tmp_path / "pred", f"ISIC_{i:07d}_attribute_{a}.png", p)
    official = task2.score(tmp_path / "gt", tmp_path / "pred")
    ours = isic_task2_score(truths, preds)
    for a in ATTRS:
        for m in ("jaccard", "dice"):
            assert ours[a][m] == pytest.approx(official[a][m], abs=1e-6)
            assert ours["micro_average"][m] == pytest.approx(official["micro_average"][m], abs=1e-6)
    assert ours["overall"] == pytest.approx(official["overall"], abs=1e-6)
    assert ours["macro_average"]["jaccard"] == pytest.approx(np.mean([ours[a]["jaccard"] for a in ATTRS]))


def test_binarisation_rules_and_errors():
    assert binarize(np.array([128, 129], np.uint8)).tolist() == [False, True]
    assert binarize(np.array([0.49, 0.5])).tolist() == [False, True]
    assert binarize(torch.tensor([0, 1])).tolist() == [False, True]
    empty = np.zeros((4, 4), np.uint8)
    assert isic_task1_score([empty], [empty])["jaccard"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        isic_task1_score([empty], [np.zeros((3, 3), np.uint8)])
    with pytest.raises(ValueError, match="2 truth masks but 1"):
        isic_task1_score([empty, empty], [empty])
    with pytest.raises(ValueError, match="attributes differ"):
        isic_task2_score({"streaks": [empty]}, {"globules": [empty]})


def test_cumulative_metric_in_ignite_engine():
    rng = np.random.default_rng(2)
    truths = {a: [] for a in ATTRS}
    preds = {a: [] for a in ATTRS}
    batches = []
    for _ in range(3):
        y = (rng.random((2, 3, 16, 16)) > 0.6).astype(np.float32)
        p = np.clip(y + rng.normal(0, 0.4, y.shape), 0, 1).astype(np.float32)
        batches.append({"pred": torch.from_numpy(p), "label": torch.from_numpy(y)})
        for c, a in enumerate(ATTRS):
            truths[a] += list(y[:, c])
            preds[a] += list(p[:, c])
    expected = isic_task2_score(truths, preds)

    engine = Engine(lambda e, batch: batch)
    IgniteMetricHandler(
        metric_fn=ISICTask2Metric(ATTRS, reduction="overall"), output_transform=from_engine(["pred", "label"])
    ).attach(engine, "isic_overall")
    engine.run(batches)
    assert engine.state.metrics["isic_overall"] == pytest.approx(expected["overall"])

    metric = ISICTask2Metric(ATTRS, reduction="streaks")
    for b in batches:
        metric(b["pred"], b["label"])
    assert metric.aggregate() == pytest.approx(expected["streaks"]["jaccard"])
    with pytest.raises(ValueError, match="expected prediction and truth"):
        metric(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))


def test_task1_cumulative_metric_equals_function():
    pairs = _random_pairs(np.random.default_rng(3), 6)
    pairs = [(t[:20, :20], p[:20, :20]) for t, p in pairs]
    metric = ISICTask1Metric(reduction="all")
    for i in range(0, 6, 3):
        y = torch.from_numpy(np.stack([t for t, _ in pairs[i : i + 3]])[:, None])
        p = torch.from_numpy(np.stack([q for _, q in pairs[i : i + 3]])[:, None])
        metric(p, y)
    expected = isic_task1_score([t for t, _ in pairs], [p for _, p in pairs])
    for name, value in metric.aggregate().items():
        assert value == pytest.approx(expected[name])
    with pytest.raises(ValueError, match="reduction"):
        ISICTask1Metric(reduction="iou")
