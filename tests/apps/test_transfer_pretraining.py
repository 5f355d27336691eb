"""Encoder pretraining pieces of the transfer study: ImageFolder data, the two schemes, checkpoints, online stop."""

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.transforms import Compose
from torch import nn

from monai_skinattr.apps.transfer.pretraining import (
    EncoderCheckpoints,
    MixUpCutMix,
    checkpoint_path,
    pretraining_transforms,
    read_robustness,
)
from monai_skinattr.data import DatasetLayoutError, imagefolder_datalist, synthetic


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    for split in ("train", "val"):
        synthetic.make_imagefolder(root, n=3, size=(40, 48), classes=3, split=split, progress=False)
    return root


def test_imagefolder_reader_and_twin(folder, tmp_path):
    train, classes = imagefolder_datalist(folder, "train")
    assert classes == ["class_0", "class_1", "class_2"] and len(train) == 9
    assert sorted(e["label"] for e in train) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    again = synthetic.make_imagefolder(tmp_path / "again", n=3, size=(40, 48), classes=3, progress=False)
    assert (again / "train" / "class_1" / "1_0002.png").read_bytes() == (
        folder / "train" / "class_1" / "1_0002.png"
    ).read_bytes()
    (tmp_path / "again" / "train" / "class_9").mkdir()
    with pytest.raises(DatasetLayoutError, match="class_9' holds no images"):
        imagefolder_datalist(tmp_path / "again", "train")
    with pytest.raises(DatasetLayoutError, match="missing split folder"):
        imagefolder_datalist(folder, "test")


@pytest.mark.parametrize("scheme", ["simple", "advanced"])
def test_schemes_give_normalised_crops(folder, scheme):
    train, _ = imagefolder_datalist(folder, "train")
    out = Compose(pretraining_transforms(scheme, 32))(train[0])
    assert out["image"].shape == (3, 32, 32) and out["image"].dtype == torch.float32
    evaluation = Compose(pretraining_transforms(scheme, 32, train=False))
    a, b = evaluation(train[0])["image"], evaluation(train[0])["image"]
    assert torch.equal(a, b)  # evaluation preprocessing is deterministic
    with pytest.raises(ValueError, match="scheme must be one of"):
        pretraining_transforms("deit", 32)


def test_mixup_cutmix_gives_soft_labels():
    torch.manual_seed(0)
    batch = {"image": torch.rand(4, 3, 16, 16), "label": torch.tensor([0, 1, 2, 1])}
    images, labels = MixUpCutMix(num_classes=3)(batch)
    assert images.shape == (4, 3, 16, 16) and labels.shape == (4, 3)
    assert torch.allclose(labels.sum(dim=1), torch.ones(4)) and (labels.max(dim=1).values < 1).any()
    images, labels = MixUpCutMix(num_classes=3, enabled=False)(batch)
    assert torch.equal(images, batch["image"]) and torch.equal(labels, batch["label"])


def _engine(epochs: int, handler: EncoderCheckpoints) -> Engine:
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.run([0], max_epochs=epochs)
    return engine


def test_checkpoints_at_the_configured_epochs(tmp_path):
    encoder = nn.Linear(2, 2)
    _engine(6, EncoderCheckpoints(tmp_path, encoder, epochs=[1, 5, 20]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "encoder_epoch000.pt",
        "encoder_epoch001.pt",
        "encoder_epoch005.pt",
    ]
    state = torch.load(checkpoint_path(tmp_path, 5), weights_only=True)
    assert state.keys() == encoder.state_dict().keys()


def test_online_mode_stops_at_the_first_local_maximum(tmp_path):
    scores = iter([0.3, 0.5, 0.7, 0.6, 0.9])  # random init, epochs 1, 2, 3, 4: the first maximum is epoch 2
    handler = EncoderCheckpoints(
        tmp_path, nn.Linear(2, 2), epochs=[1, 2, 3, 4], score=lambda _: next(scores), online=True
    )
    engine = _engine(4, handler)
    assert engine.state.epoch == 3  # stopped after scoring epoch 3
    assert (tmp_path / "online_selection.txt").read_text().strip() == "2"
    assert read_robustness(tmp_path) == pytest.approx({0: 0.3, 1: 0.5, 2: 0.7, 3: 0.6})
    assert not checkpoint_path(tmp_path, 4).exists()
    with pytest.raises(ValueError, match="needs a robustness score"):
        EncoderCheckpoints(tmp_path, nn.Linear(2, 2), online=True)
    np.testing.assert_equal(len(list(tmp_path.glob(".partial*"))), 0)
