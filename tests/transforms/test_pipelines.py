"""lesion_preprocessing: one definition for training, validation and inference."""

import numpy as np
import pytest
import torch
from monai.transforms import Compose

from monai_skinattr.data import image_datalist, lesion_splits, prepare_isic
from monai_skinattr.data.checks import DatasetLayoutError
from monai_skinattr.transforms import lesion_preprocessing
from monai_skinattr.transforms.pipelines import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def isic2016(tmp_path_factory):
    root = tmp_path_factory.mktemp("isic2016")
    params = {"n": 6, "size": [40, 60], "year": 2016}
    return prepare_isic(root, root, params, splits=("training", "test"), task=1)


def test_splits_and_photo_list(isic2016):
    splits = lesion_splits(isic2016, val_fraction=0.34)
    assert {k: len(v) for k, v in splits.items()} == {"training": 4, "validation": 2, "test": 6}
    assert not {e["id"] for e in splits["test"]} & {e["id"] for e in splits["training"] + splits["validation"]}
    assert len(image_datalist(isic2016)) == 6  # the test photos of an ISIC root


def test_prepare_isic_keeps_other_data(tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="holds other data"):
        prepare_isic(tmp_path, tmp_path / "own", {"n": 2}, make_synthetic="yes")


def test_training_and_inference_share_the_image_path(isic2016):
    entry = lesion_splits(isic2016)["test"][0]
    train = Compose(lesion_preprocessing([32, 32]))(entry)
    infer = Compose(lesion_preprocessing([32, 32], label=False))({"image": entry["image"]})
    assert torch.equal(train["image"], infer["image"]) and train["image"].shape == (3, 32, 32)
    assert set(np.unique(train["label"].numpy())) <= {0.0, 1.0} and train["label"].shape == (1, 32, 32)
    raw = Compose(lesion_preprocessing([32, 32], normalization="none"))(entry)["image"]
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(train["image"], (raw - mean) / std, atol=1e-5)
    kept = Compose(lesion_preprocessing([32, 32], resize_label=False))(entry)
    assert kept["label"].shape == (1, 40, 60)  # evaluation scores at the original size
    with pytest.raises(ValueError, match="normalization must be"):
        lesion_preprocessing([32, 32], normalization="zscore")
