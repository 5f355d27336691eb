import numpy as np
import pytest
from PIL import Image

from monai_skinattr.visualize import (
    PALETTE,
    assign_colors,
    bar_chart,
    comparison_panel,
    contact_sheet,
    legend,
    line_panels,
    line_plot,
    overlay,
)

H, W = 40, 60
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def _image():
    return np.full((H, W, 3), 100, np.uint8)


def _square(y0, y1, x0, x1):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _has(array, color):
    return bool((array.reshape(-1, 3) == color).all(axis=1).any())


def test_overlay_blend_and_outline():
    out = overlay(_image(), {"a": _square(10, 20, 10, 30)}, colors={"a": RED}, alpha=0.25)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert out[15, 20].tolist() == [139, 75, 75]  # 0.75 * 100 + 0.25 * (255, 0, 0), rounded
    assert out[10, 20].tolist() == list(RED)  # border at full colour
    assert out[5, 5].tolist() == [100, 100, 100]
    no_line = overlay(_image(), {"a": _square(10, 20, 10, 30)}, colors={"a": RED}, alpha=0.25, outline=False)
    assert no_line[10, 20].tolist() == [139, 75, 75]
    # grey-scale input, palette colours in mask order when no colours are given, old call style still works
    grey = overlay(np.full((H, W), 100, np.uint8), {"x": _square(0, 5, 0, 5), "y": _square(30, 40, 50, 60)}, alpha=0.35)
    assert grey[0, 0].tolist() == list(PALETTE[0]) and grey[39, 59].tolist() == list(PALETTE[1])
    with pytest.raises(ValueError, match="mask 'a' has shape"):
        overlay(_image(), {"a": np.ones((3, 3))})


def test_assign_colors_keeps_callers_and_fills_from_palette():
    colors = assign_colors(["a", "b", "c"], {"b": PALETTE[0]})
    assert colors == {"a": PALETTE[1], "b": PALETTE[0], "c": PALETTE[2]}


def test_legend_has_every_swatch():
    colors = {"globules": RED, "streaks": BLUE, "pigment_network": GREEN}
    strip = legend(colors, width=300)
    assert strip.dtype == np.uint8 and strip.shape[1:] == (300, 3) and strip.shape[0] >= 12
    for color in colors.values():
        assert (strip.reshape(-1, 3) == color).all(axis=1).sum() >= 12 * 12
    narrow = legend(colors, width=90)  # wraps onto more lines
    assert narrow.shape[0] > strip.shape[0] and all(_has(narrow, c) for c in colors.values())
    assert legend({}, width=50).shape == (0, 50, 3)


def test_comparison_panel_layout_and_colours():
    truth = {"globules": _square(5, 15, 5, 15)}
    prediction = {"streaks": _square(25, 35, 40, 55)}
    colors = {"globules": RED, "streaks": BLUE}
    panel = comparison_panel(_image(), prediction, truth, colors=colors)
    assert panel.shape[1] == 3 * W + 2 * 4 and panel.dtype == np.uint8
    top = 18
    image_p, truth_p, pred_p = (panel[top : top + H, i * (W + 4) : i * (W + 4) + W] for i in range(3))
    assert np.array_equal(image_p, _image())
    assert _has(truth_p, RED) and not _has(pred_p, RED) and not _has(image_p, RED)
    assert _has(pred_p, BLUE) and not _has(truth_p, BLUE)
    legend_strip = panel[top + H :]
    assert legend_strip.shape[0] > 0 and _has(legend_strip, RED) and _has(legend_strip, BLUE)
    assert panel[2:14, :].max() > 100  # titles are drawn above the panels

    # the same name gets the same (palette) colour in both panels
    same = comparison_panel(_image(), {"streaks": _square(25, 35, 40, 55)}, {"streaks": _square(5, 15, 5, 15)})
    assert _has(same[top : top + H, W + 4 : 2 * W + 4], PALETTE[0])
    assert _has(same[top : top + H, 2 * (W + 4) :], PALETTE[0])
    two = comparison_panel(_image(), prediction)
    assert two.shape[1] == 2 * W + 4


def test_contact_sheet_size():
    sheet = contact_sheet([[_image(), _image()], [_image()]], titles=["a", "b"], tile=20)
    assert sheet.shape == (18 + 2 * 24, 2 * (30 + 4), 3)


def _png_size(path):
    with Image.open(path) as im:
        im.load()
        return im.format, im.size


def test_bar_chart_and_line_plot_write_png(tmp_path):
    values = {"fold 0": {"Jaccard": 0.41, "Dice": 0.55}, "fold 1": {"Jaccard": 0.44, "Dice": 0.58}}
    errors = {"fold 0": {"Jaccard": 0.02, "Dice": 0.03}, "fold 1": {"Jaccard": 0.01, "Dice": 0.02}}
    path = bar_chart(values, tmp_path / "plots" / "bars.png", title="TATL", ylabel="score", errors=errors)
    fmt, (w, h) = _png_size(path)
    assert path == tmp_path / "plots" / "bars.png" and fmt == "PNG" and w > 100 and h > 100
    line = line_plot([1, 2, 3], {"train": [0.9, 0.5, 0.3], "val": [1.0, 0.7, 0.6]}, tmp_path / "loss.png",
                     title="loss", xlabel="epoch", errors={"val": [0.1, 0.1, 0.05]})  # fmt: skip
    fmt, (w, h) = _png_size(line)
    assert fmt == "PNG" and w > 100 and h > 100
    assert not list(tmp_path.rglob(".partial.*"))
    with pytest.raises(ValueError, match="3 x values"):
        line_plot([1, 2, 3], {"a": [1, 2]}, tmp_path / "bad.png")
    panels = {"streaks": {"train": ([100, 200], [0.9, 0.6]), "val": ([100, 200], [1.0, 0.8])},
              "globules": {"train": ([100], [0.8])}}  # fmt: skip
    fmt, (w, h) = _png_size(line_panels(panels, tmp_path / "panels.png", xlabel="step", ylabel="loss"))
    assert fmt == "PNG" and w > 1.5 * _png_size(line)[1][0]  # two panels side by side
    with pytest.raises(ValueError, match="line 'train' of 'globules' has 2 values for 1 x values"):
        line_panels({"globules": {"train": ([100], [0.8, 0.7])}}, tmp_path / "bad.png")
    with pytest.raises(ValueError):
        bar_chart({}, tmp_path / "empty.png")
