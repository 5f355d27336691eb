import numpy as np
import pytest
import torch
from torch import nn

from monai_skinattr.metrics import hessian_spectral_norm, robustness_score, select_offline, select_online
from monai_skinattr.networks import EffUNet


def _identity_encoder(x):
    return [x, x]


def _one_hot_images(n):
    images = torch.zeros(n, 1, n, 1)
    for i in range(n):
        images[i, 0, i, 0] = 1.0
    return images


def test_orthogonal_images_are_perfectly_robust():
    # anchor == positive (identity views); every negative is another, orthogonal image: hinge 0
    images = _one_hot_images(5)
    loader = [images[:4], images[4:]]  # the single-image batch takes its negative from the batch before
    assert robustness_score(_identity_encoder, loader, pool=False, views=lambda x: x) == 1.0


def test_identical_images_give_margin_hinge():
    # negatives look exactly like the anchor: hinge = margin everywhere
    loader = [torch.ones(3, 1, 4, 4)]
    assert robustness_score(_identity_encoder, loader, views=lambda x: x, margin=0.5) == pytest.approx(0.5)
    assert robustness_score(_identity_encoder, loader, views=lambda x: x, margin=0.2) == pytest.approx(0.8)


def test_real_encoder_score_is_reproducible_and_bounded():
    net = EffUNet()
    torch.manual_seed(0)
    loader = [torch.rand(3, 3, 32, 32), {"image": torch.rand(2, 3, 32, 32)}]
    a = robustness_score(net.encoder, loader, seed=1)
    assert a == robustness_score(net.encoder, loader, seed=1)
    assert 1.0 - 0.5 - 2.0 <= a <= 1.0
    assert net.training  # mode restored


def test_robustness_errors():
    with pytest.raises(ValueError, match="at least two images"):
        robustness_score(_identity_encoder, [torch.ones(1, 1, 2, 2)], views=lambda x: x)
    with pytest.raises(ValueError, match="distance"):
        robustness_score(_identity_encoder, [], distance="l1")


def test_checkpoint_selection():
    scores = [0.9, 0.5, 0.6, 0.55, 0.8, 0.7]
    assert select_offline(scores) == 0
    assert select_offline(scores[1:]) == 3
    assert select_online(scores) == 2  # first local maximum after the random init
    assert select_online([0.1, 0.7, 0.6]) == 1
    assert select_online([0.1, 0.2, 0.3]) == 2  # never falls: last checkpoint
    with pytest.raises(ValueError):
        select_online([0.1])


def test_hessian_spectral_norm_of_least_squares():
    # loss = mean((X w - y)^2)  ->  Hessian = 2 X^T X / N, known eigenvalues
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(20, 3))).float()
    y = torch.from_numpy(rng.normal(size=(20, 1))).float()
    model = nn.Linear(3, 1, bias=False)
    expected = np.linalg.eigvalsh(2 * x.numpy().T @ x.numpy() / 20).max()
    loader = [(x[:10], y[:10]), (x[10:], y[10:])]
    gamma = hessian_spectral_norm(model, nn.MSELoss(), loader, iters=100, tol=1e-7)
    assert gamma == pytest.approx(expected, rel=1e-4)
