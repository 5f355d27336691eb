import math

import numpy as np
import pytest
import torch
from torch import nn

from monai_skinattr.metrics import (
    hessian_spectral_norm,
    per_sample_hessian_norms,
    robustness_score,
    select_offline,
    select_online,
    stability_bound,
    stability_bound_terms,
)
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


def _half_squared_error(out, y):
    return 0.5 * ((out - y) ** 2).sum()


def _linear_problem(n=7, d=4):
    # rows of very different norms; per-sample loss 0.5 (w.x - y)^2 has Hessian x x^T, spectral norm ||x||^2
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(n, d)) * np.linspace(0.2, 3.0, n)[:, None]).float()
    y = torch.from_numpy(rng.normal(size=(n, 1))).float()
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(rng.normal(size=(1, d))).float())
    expected_norms = (x * x).sum(1).tolist()
    expected_losses = (0.5 * (x @ model.weight.detach().T - y) ** 2).squeeze(1).tolist()
    return model, x, y, expected_norms, expected_losses


def test_per_sample_hessian_norms_of_linear_model():
    model, x, y, expected_norms, expected_losses = _linear_problem()
    model.train()
    loader = [(x[:3], y[:3]), {"image": x[3:], "label": y[3:]}]  # batches of 3 and 4 are split into samples
    norms, losses = per_sample_hessian_norms(model, _half_squared_error, loader, iters=50, tol=1e-7)
    assert len(norms) == len(losses) == 7
    np.testing.assert_allclose(norms, expected_norms, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5, atol=1e-6)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="no samples"):
        per_sample_hessian_norms(model, _half_squared_error, [])


def test_stability_bound_terms_by_hand():
    # m = 16 -> m^(-1/4) = 0.5; R = 0.25 -> sqrt(R) = 0.5; mean norm 1 -> gamma_hat = 1.5, gamma+ = 2, gamma- = 1;
    # c = 0.5 -> c gamma+ = 1: bound = (1 + 1/0.5) * 0.25^(1/2) * sqrt(log 4) / 16^(1/2) = 0.375 sqrt(log 4)
    losses, norms = [0.1, 0.4] * 8, [0.5, 1.5] * 8
    terms = stability_bound_terms(losses, norms, c=0.5, num_hypotheses=4)
    assert terms["m"] == 16
    assert terms["risk"] == pytest.approx(0.25)
    assert (terms["gamma_hat"], terms["gamma_plus"], terms["gamma_minus"]) == pytest.approx((1.5, 2.0, 1.0))
    assert terms["bound"] == pytest.approx(0.375 * math.sqrt(math.log(4)))
    assert terms["bound"] == pytest.approx(0.4415287584, rel=1e-9)


def test_stability_bound_terms_formula_defaults():
    losses, norms = [0.3, 0.7, 0.2, 0.9, 0.5], [2.0, 0.4, 1.1, 3.3, 0.8]
    m = 5
    risk = sum(losses) / m
    gamma = sum(norms) / m + math.sqrt(risk)
    gp, gm = gamma + m**-0.25, gamma - m**-0.25
    c = 0.01
    expected = (1 + 1 / (c * gm)) * risk ** (c * gp / (1 + c * gp)) * math.sqrt(math.log(4)) / m ** (1 / (1 + c * gp))
    terms = stability_bound_terms(losses, norms)  # c = 0.01, |K| = 4 as in section 5.8
    assert terms["bound"] == pytest.approx(expected, rel=1e-12)
    assert (terms["risk"], terms["gamma_hat"], terms["gamma_plus"], terms["gamma_minus"]) == pytest.approx(
        (risk, gamma, gp, gm)
    )


def test_stability_bound_terms_errors():
    with pytest.raises(ValueError, match="γ⁻.*m = 16"):  # gamma_hat = 0.5 = m^(-1/4): gamma- = 0
        stability_bound_terms([0.25] * 16, [0.0] * 16)
    with pytest.raises(ValueError, match="γ⁻"):
        stability_bound_terms([0.0] * 4, [0.1] * 4)
    with pytest.raises(ValueError, match="empty"):
        stability_bound_terms([], [])
    with pytest.raises(ValueError, match="2 losses but 3"):
        stability_bound_terms([0.1, 0.2], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        stability_bound_terms([0.1, -0.2], [1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        stability_bound_terms([0.1, 0.2], [1.0, -1.0])
    with pytest.raises(ValueError, match="c must be positive"):
        stability_bound_terms([0.1, 0.2], [1.0, 1.0], c=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        stability_bound_terms([0.1, 0.2], [1.0, 1.0], num_hypotheses=1)


def test_stability_bound_of_linear_model():
    model, x, y, expected_norms, expected_losses = _linear_problem()
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]
    out = stability_bound(model, _half_squared_error, loader, c=0.01, num_hypotheses=4, iters=50, tol=1e-7)
    expected = stability_bound_terms(expected_losses, expected_norms, c=0.01, num_hypotheses=4)
    assert out.keys() == expected.keys()
    assert out["m"] == 7
    for key in ("bound", "risk", "gamma_hat", "gamma_plus", "gamma_minus"):
        assert out[key] == pytest.approx(expected[key], rel=1e-4), key
