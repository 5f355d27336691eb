import numpy as np
import pytest
import torch
from monai.losses import DiceLoss, SSIMLoss

from monai_skinattr.losses import BatchDiceLoss, SSIML1Loss, TverskyJaccardLoss


def _reference(logits, target, beta=0.6, s=1.0, lt=0.5, lj=0.5):
    """TATL Eq. 1-3 computed per image with numpy."""
    p = 1 / (1 + np.exp(-logits))
    out = []
    for pi, yi in zip(p, target, strict=True):
        pi, yi = pi.ravel(), yi.ravel()
        tp = (pi * yi).sum()
        t = (tp + s) / (tp + beta * ((1 - pi) * yi).sum() + (1 - beta) * (pi * (1 - yi)).sum() + s)
        j = (tp + s) / (yi.sum() + pi.sum() - tp + s)
        out.append(lt * (1 - t) + lj * (1 - j))
    return np.mean(out)


def test_hand_value():
    # p = 0.5 on four positive pixels: T = 3 / 4.2, J = 3 / 5
    loss = TverskyJaccardLoss()(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    assert loss.item() == pytest.approx(0.5 * (1 - 3 / 4.2) + 0.5 * (1 - 3 / 5), abs=1e-6)


def test_matches_equations_on_random_input():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 1, 8, 8)).astype(np.float32)
    target = (rng.random((3, 1, 8, 8)) > 0.7).astype(np.float32)
    for kwargs in ({}, {"beta": 0.3, "smooth": 0.5, "lambda_tversky": 0.2, "lambda_jaccard": 0.8}):
        ours = TverskyJaccardLoss(**kwargs)(torch.from_numpy(logits), torch.from_numpy(target)).item()
        ref = _reference(
            logits,
            target,
            beta=kwargs.get("beta", 0.6),
            s=kwargs.get("smooth", 1.0),
            lt=kwargs.get("lambda_tversky", 0.5),
            lj=kwargs.get("lambda_jaccard", 0.5),
        )
        assert ours == pytest.approx(ref, abs=1e-6)


def test_beta_weights_false_negatives():
    only_tversky = TverskyJaccardLoss(lambda_tversky=1.0, lambda_jaccard=0.0, smooth=0.0, beta=0.6)
    big = torch.full((1, 1, 1, 2), 20.0)
    target_fn = torch.tensor([[[[1.0, 1.0]]]])  # predict [1, 1]
    pred_half = torch.tensor([[[[20.0, -20.0]]]])
    fn_loss = only_tversky(pred_half, target_fn).item()  # one FN: 1 - 1 / (1 + 0.6)
    fp_loss = only_tversky(big, torch.tensor([[[[1.0, 0.0]]]])).item()  # one FP: 1 - 1 / (1 + 0.4)
    assert fn_loss == pytest.approx(1 - 1 / 1.6, abs=1e-5)
    assert fp_loss == pytest.approx(1 - 1 / 1.4, abs=1e-5)


def test_finite_gradients_on_empty_masks():
    logits = torch.randn(2, 1, 16, 16, requires_grad=True)
    loss = TverskyJaccardLoss()(logits, torch.zeros(2, 1, 16, 16))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="beta"):
        TverskyJaccardLoss(beta=1.5)


def test_ssim_l1():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert SSIML1Loss()(x, x).item() == pytest.approx(0.0, abs=1e-6)
    diff = SSIML1Loss(lambda_l1=2.0)(x, y) - SSIML1Loss(lambda_l1=0.0)(x, y)
    assert diff.item() == pytest.approx(2.0 * (x - y).abs().mean().item(), abs=1e-6)


def _perturbed(seed=0):
    """Targets outside [0, 1], as gradient perturbation makes them, with a noisy prediction of them."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(3, 2, 24, 24, generator=g) * 2.2 - 0.5
    target[0, 0, 0, 0], target[0, 0, 0, 1] = -0.5, 1.7  # sample 0 spans exactly [-0.5, 1.7]
    target[1] *= 0.3  # the samples have different ranges
    return target + 0.2 * torch.randn(target.shape, generator=g), target


def test_ssim_l1_range_from_targets():
    x, y = _perturbed()
    loss = SSIML1Loss(lambda_l1=0.0)
    assert loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert SSIML1Loss()(y, y).item() == pytest.approx(0.0, abs=1e-6)
    # per-sample range: the mean of MONAI's SSIMLoss with each sample's own explicit range
    ranges = [(t.max() - t.min()).item() for t in y]
    assert ranges[0] == pytest.approx(2.2)
    expected = np.mean(
        [SSIMLoss(2, data_range=r, win_size=7)(x[i : i + 1], y[i : i + 1]).item() for i, r in enumerate(ranges)]
    )
    assert loss(x, y).item() == pytest.approx(expected, abs=1e-6)
    # SSIM is invariant to scaling both images when the range comes from the targets, not with a fixed range
    assert loss(5 * x, 5 * y).item() == pytest.approx(loss(x, y).item(), abs=1e-5)
    fixed = SSIML1Loss(lambda_l1=0.0, data_range=2.2)
    assert abs(fixed(5 * x, 5 * y).item() - fixed(x, y).item()) > 1e-3


def test_ssim_l1_explicit_range_is_monai_ssim_loss():
    x, y = _perturbed(1)
    for data_range in (1.0, 2.2):
        ours = SSIML1Loss(lambda_l1=0.5, data_range=data_range)(x, y).item()
        ref = SSIMLoss(2, data_range=data_range, win_size=7)(x, y).item() + 0.5 * (x - y).abs().mean().item()
        assert ours == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="data_range must be positive"):
        SSIML1Loss(data_range=0.0)


def test_ssim_l1_constant_target_hand_value():
    # a constant target has range 0, so 1.0 is used: c1 = (0.01 * 1.0) ** 2 and, with no contrast in either image,
    # SSIM = (2 * 0.01 * 0.02 + c1) / (0.01 ** 2 + 0.02 ** 2 + c1) = 5 / 6 (it would be 4 / 5 with a tiny range)
    x, y = torch.full((1, 1, 9, 9), 0.01, requires_grad=True), torch.full((1, 1, 9, 9), 0.02)
    loss = SSIML1Loss(lambda_l1=0.0)(x, y)
    assert loss.item() == pytest.approx(1 / 6, abs=1e-4)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def _dice_loss(tp, y2, p2, eps=1e-5):
    """Thesis Eq. 1.10 from hand-counted sums: 1 - (2 Σ y ŷ + ε) / (Σ y² + Σ ŷ² + ε)."""
    return 1 - (2 * tp + eps) / (y2 + p2 + eps)


def test_batch_dice_binary_hand_value():
    # p = sigmoid(logit) = .75, .5 on image 0 (truth 1, 0) and .25, .25 on image 1 (empty truth); sums over the batch:
    # foreground Σyp = .75, Σy² = 1, Σp² = .9375; background (1 - p, 1 - y) Σ = 2, Σ = 3, Σ = 1.4375
    logits = torch.log(torch.tensor([[3.0, 1.0], [1 / 3, 1 / 3]])).reshape(2, 1, 1, 2)
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).reshape(2, 1, 1, 2)
    foreground, background = _dice_loss(0.75, 1.0, 0.9375), _dice_loss(2.0, 3.0, 1.4375)
    assert (foreground, background) == pytest.approx((7 / 31, 7 / 71), abs=1e-4)
    assert BatchDiceLoss()(logits, target).item() == pytest.approx((foreground + background) / 2, abs=1e-6)
    # MONAI's loss on the one sigmoid channel is the foreground term alone, not Eq. 2.10
    monai_foreground = DiceLoss(sigmoid=True, squared_pred=True, batch=True)(logits, target).item()
    assert monai_foreground == pytest.approx(foreground, abs=1e-6)
    # integer labels give the same value
    assert BatchDiceLoss()(logits, target.long()).item() == pytest.approx((foreground + background) / 2, abs=1e-6)


def test_batch_dice_multiclass_hand_value():
    # softmax of (log 2, 0, 0) = (.5, .25, .25) on a class-0 pixel, of (0, 0, log 2) = (.25, .25, .5) on a class-2
    # pixel: classes 0 and 2 have Σyp = .5, Σy² = 1, Σp² = .3125; class 1 is absent with Σp² = .125
    logits = torch.log(torch.tensor([[2.0, 1.0], [1.0, 1.0], [1.0, 2.0]])).reshape(1, 3, 1, 2)
    target = torch.tensor([0, 2]).reshape(1, 1, 1, 2)
    per_class = [_dice_loss(0.5, 1.0, 0.3125), _dice_loss(0.0, 0.0, 0.125), _dice_loss(0.5, 1.0, 0.3125)]
    assert per_class[0] == pytest.approx(5 / 21, abs=1e-5) and per_class[1] == pytest.approx(1.0, abs=1e-4)
    loss = BatchDiceLoss()(logits, target).item()
    assert loss == pytest.approx(sum(per_class) / 3, abs=1e-6)
    assert BatchDiceLoss(smooth=0.0)(logits, target).item() == pytest.approx(31 / 63, abs=1e-6)


def test_batch_dice_finite_gradients():
    torch.manual_seed(0)
    for channels, target in ((1, torch.zeros(2, 1, 8, 8)), (4, torch.randint(0, 4, (2, 1, 8, 8)))):
        logits = (30 * torch.randn(2, channels, 8, 8)).requires_grad_()  # saturated probabilities too
        loss = BatchDiceLoss()(logits, target)
        loss.backward()
        assert torch.isfinite(loss) and 0 <= loss.item() <= 1
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
