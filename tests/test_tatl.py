import pytest
import torch
from torch import nn

from monai_skinattr.data import DatasetLayoutError, synthetic
from monai_skinattr.networks import EffUNet, ProbabilityEnsemble
from monai_skinattr.tatl import TATLCascade, build_network, ensure_isic, load_probability_net, with_predicted_lesions


class _Box(nn.Module):
    """Probability 1 inside a fixed box of its input grid, 0 elsewhere."""

    def __init__(self, box=None):
        super().__init__()
        self.box = box

    def forward(self, x):
        out = torch.zeros(x.shape[0], 1, *x.shape[-2:])
        if self.box is None:
            out[:] = 1
        else:
            y0, x0, y1, x1 = self.box
            out[:, :, y0:y1, x0:x1] = 1
        return out


def test_cascade_puts_crop_predictions_back_at_original_size():
    # lesion found on a 32x32 grid at rows 8..16, cols 8..12; offset 2 on that grid -> rows 6..18, cols 6..14;
    # scaled x2 to the 64x64 image -> rows 12..36, cols 12..28. An all-ones attribute network fills exactly that box.
    cascade = TATLCascade(
        _Box((8, 8, 16, 12)), None, {"streaks": _Box()}, lesion_size=(32, 32), input_size=(16, 16), offset=2
    )
    maps = cascade(torch.rand(3, 64, 64))
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[12:36, 12:28] = True
    assert torch.equal(maps["streaks"], expected)
    lesion = torch.zeros(64, 64, dtype=torch.bool)
    lesion[16:32, 16:24] = True
    assert torch.equal(maps["lesion"], lesion)
    with pytest.raises(ValueError, match="one \\(C, H, W\\) image"):
        cascade(torch.rand(1, 3, 64, 64))


def test_empty_lesion_keeps_whole_image():
    cascade = TATLCascade(
        _Box((0, 0, 0, 0)), _Box(), {"globules": _Box((0, 0, 4, 4))}, lesion_size=(8, 8), input_size=(8, 8)
    )
    maps = cascade(torch.rand(3, 16, 24))
    # the whole 16x24 image was the crop; the 4x4 box of the 8x8 input maps to the top-left 8x12 quarter
    assert maps["union"].all()
    assert maps["globules"][:7, :11].all() and not maps["globules"][8:].any() and not maps["globules"][:, 12:].any()


def test_load_probability_net_round_trip(tmp_path):
    net = EffUNet().eval()
    torch.save(net.state_dict(), tmp_path / "u.pt")
    prob = load_probability_net("unet", tmp_path / "u.pt")
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(prob(x), torch.sigmoid(net(x)))
    assert isinstance(prob, ProbabilityEnsemble)
    with pytest.raises(ValueError, match="2 architectures but 1"):
        load_probability_net(["unet", "linknet"], [tmp_path / "u.pt"])
    with pytest.raises(ValueError, match="arch"):
        build_network("resnet")


def test_ensure_isic_generates_once_and_accepts_real_layouts(tmp_path):
    root = ensure_isic(tmp_path / "syn", n_train=3, n_val=2, size=(32, 32))
    first = (tmp_path / "syn" / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000000.jpg").stat().st_mtime_ns
    assert ensure_isic(root, n_train=3, n_val=2, size=(32, 32)) == root
    assert (tmp_path / "syn" / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000000.jpg").stat().st_mtime_ns == first
    real = synthetic.make_isic(tmp_path / "real", n=2, size=(32, 32), progress=False)
    (real / ".synthetic-isic-training.json").unlink()  # looks like a real download now
    assert ensure_isic(real) == str(real)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="neither an ISIC challenge folder nor empty"):
        ensure_isic(tmp_path / "other")


def test_with_predicted_lesions(tmp_path):
    data = [{"id": "ISIC_0000001", "lesion": "gt.png"}]
    with pytest.raises(DatasetLayoutError, match="ISIC_0000001_segmentation.png: no predicted lesion"):
        with_predicted_lesions(data, tmp_path)
    (tmp_path / "ISIC_0000001_segmentation.png").write_bytes(b"")
    assert with_predicted_lesions(data, tmp_path)[0]["lesion"] == str(tmp_path / "ISIC_0000001_segmentation.png")
    assert data[0]["lesion"] == "gt.png"
