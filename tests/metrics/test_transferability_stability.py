import math
from functools import partial

import numpy as np
import pytest
import torch
from monai.data import Dataset
from monai.transforms import RandGaussianNoise
from torch import nn

from monai_skinattr.metrics import (
    hessian_spectral_norm,
    per_sample_hessian_norms,
    robustness_score,
    select_offline,
    select_online,
    stability_bound,
    stability_bound_terms,
    transferability_indicator_score,
)
from monai_skinattr.networks import EffUNet


def _identity_encoder(x):
    return [x, x]


def _same(x):
    return x


def _one_hot_images(n):
    return [torch.eye(n)[i].reshape(n, 1, 1) for i in range(n)]


def test_robustness_hand_values():
    # two images, so the negative of each is the other; identical views: d(anchor, positive) = 0 and the hinge is
    # max(0, margin - d(x0, x1)). x0 = (1, 2, 3), x1 = (3, 1, 2): cos = 11/14, mean squared difference 6/3 = 2,
    # centred (-1, 0, 1) and (1, -1, 0) give Pearson -1/2
    images = [torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1), torch.tensor([3.0, 1.0, 2.0]).reshape(3, 1, 1)]
    score = partial(robustness_score, _identity_encoder, images, views=_same)
    assert score() == pytest.approx(1 - (0.5 - 3 / 14))  # 5/7
    assert score(pool=False) == pytest.approx(5 / 7)
    assert score(distance="l2", margin=2.5) == pytest.approx(1 - 0.5)
    assert score(distance="l2") == 1.0
    assert score(distance="pearson", margin=2.0) == pytest.approx(1 - 0.5)
    assert score(distance="pearson", margin=1.0) == 1.0


def test_negative_is_never_the_anchor():
    # orthogonal images and identical views: hinge 0 for any other image, the full margin for the anchor itself
    images = _one_hot_images(5)
    for seed in range(20):
        assert robustness_score(_identity_encoder, images, pool=False, views=_same, seed=seed, batch_size=2) == 1.0
    same = [torch.ones(1, 2, 2)] * 3  # every other image looks like the anchor: hinge = margin
    assert robustness_score(_identity_encoder, same, views=_same, margin=0.2) == pytest.approx(0.8)


def test_negative_view_is_drawn_independently():
    # image i is the constant 10 i and each view adds its own uniform offset: every view the encoder sees is distinct,
    # so with two images each appears three times (anchor, positive, and the other image's negative)
    seen = []

    def recording_encoder(x):
        seen.extend(x.flatten().tolist())
        return [x, x]

    images = [torch.zeros(1, 1, 1), torch.full((1, 1, 1), 10.0)]
    robustness_score(recording_encoder, images, views=lambda x: x + torch.rand(()), batch_size=1)
    assert len(seen) == len(set(seen)) == 6
    assert sorted(v // 10 for v in seen) == [0, 0, 0, 1, 1, 1]


class _Levels(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.second = nn.Conv2d(4, 4, 3, stride=2)

    def forward(self, x):
        first = self.first(x)
        return [first, self.second(first)]


def test_robustness_is_independent_of_batching_and_global_state():
    encoder = _Levels().train()
    images = [torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(k)) for k in range(7)]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    reference = robustness_score(encoder, images, seed=3, batch_size=16)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left as it was
    assert encoder.training  # mode restored
    for batch_size in (1, 3, 7):
        torch.manual_seed(batch_size)
        assert robustness_score(encoder, images, seed=3, batch_size=batch_size) == pytest.approx(reference, abs=1e-6)
    as_dicts = Dataset([{"image": im, "id": k} for k, im in enumerate(images)])  # a MONAI dataset of dicts
    assert robustness_score(encoder, as_dicts, seed=3, batch_size=4) == pytest.approx(reference, abs=1e-6)
    assert robustness_score(encoder, images, seed=4) != reference
    assert 1.0 - 0.5 - 2.0 <= reference <= 1.0
    # MONAI random transforms as views are seeded per view too
    noise = RandGaussianNoise(prob=1.0, std=0.1)
    with_noise = robustness_score(encoder, images, views=noise, level=0, pool=False, batch_size=2)
    assert robustness_score(encoder, images, views=noise, level=0, pool=False, batch_size=5) == pytest.approx(
        with_noise, abs=1e-6
    )


def test_real_encoder_score_is_reproducible_and_bounded():
    net = EffUNet()
    images = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    a = robustness_score(net.encoder, images, seed=1)
    assert a == robustness_score(net.encoder, images, seed=1, batch_size=2)
    assert 1.0 - 0.5 - 2.0 <= a <= 1.0
    assert net.training  # mode restored


def test_robustness_errors():
    with pytest.raises(ValueError, match="at least two images"):
        robustness_score(_identity_encoder, [torch.ones(1, 2, 2)], views=_same)
    with pytest.raises(ValueError, match="distance"):
        robustness_score(_identity_encoder, _one_hot_images(2), distance="l1")


def test_offline_selection():
    assert select_offline([0.9, 0.5, 0.6, 0.55, 0.8, 0.7]) == 0  # the random init competes offline
    assert select_offline([0.5, 0.6, 0.55, 0.8, 0.7]) == 3
    assert select_offline([0.5, 0.7, 0.7]) == 1  # tie: the earliest
    with pytest.raises(ValueError, match="no scores"):
        select_offline([])


@pytest.mark.parametrize(
    "scores, expected",
    [
        ([0.9, 0.5, 0.6, 0.55, 0.8, 0.7], 2),  # the random init (index 0) is disregarded however high
        ([0.9, 0.8, 0.7, 0.6], 1),  # falls right after the first checkpoint
        ([0.1, 0.2, 0.3], 2),  # monotone increasing: never falls, the last checkpoint
        ([0.1, 0.5, 0.5, 0.4], 2),  # plateau then fall: the plateau's last checkpoint, where it stops
        ([0.1, 0.5, 0.5, 0.6, 0.3], 3),  # a plateau that rises again is no maximum
        ([0.1, 0.4, 0.4, 0.4], 3),  # plateau to the end
        ([0.7, 0.3], 1),  # one checkpoint: it
    ],
)
def test_online_selection(scores, expected):
    assert select_online(scores) == expected


def test_online_selection_needs_a_checkpoint():
    with pytest.raises(ValueError, match="random-init score and at least one checkpoint"):
        select_online([0.1])


def test_transferability_indicator_score_hand_table():
    # index 0 = random init, then checkpoints; best Dice 0.90 at index 2
    dice = [0.80, 0.85, 0.90, 0.88]
    robustness = [0.70, 0.60, 0.65, 0.68]
    assert transferability_indicator_score(dice, robustness=robustness) == pytest.approx(0.80 / 0.90)  # offline: 0
    online = select_online(robustness)  # never falls after the first checkpoint: the last
    assert online == 3
    assert transferability_indicator_score(dice, selected=online) == pytest.approx(0.88 / 0.90)
    assert transferability_indicator_score(dice, selected=0) == pytest.approx(0.80 / 0.90)  # no pretraining
    assert transferability_indicator_score(dice, robustness=[0.1, 0.2, 0.9, 0.3]) == 1.0
    assert transferability_indicator_score(dice, robustness=[0.1, 0.9, 0.9, 0.3]) == pytest.approx(0.85 / 0.90)


def test_transferability_indicator_score_errors():
    with pytest.raises(ValueError, match="exactly one"):
        transferability_indicator_score([0.5, 0.6])
    with pytest.raises(ValueError, match="exactly one"):
        transferability_indicator_score([0.5, 0.6], robustness=[0.1, 0.2], selected=1)
    with pytest.raises(ValueError, match="3 robustness scores for 2"):
        transferability_indicator_score([0.5, 0.6], robustness=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="out of range"):
        transferability_indicator_score([0.5, 0.6], selected=2)
    with pytest.raises(ValueError, match="positive"):
        transferability_indicator_score([0.0, 0.0], selected=0)


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
