"""Overlays with a legend, comparison panels, contact sheets and plots: what a person looks at to judge a prediction.

Nothing here knows a dataset: names and colours come from the caller (or a fixed palette, in order of the masks).
Dataset contact sheets are in :mod:`monai_skinattr.data.contact_sheets`.

.. code-block:: python

    from monai_skinattr.visualize import comparison_panel

    colors = {"streaks": (255, 0, 255), "globules": (255, 60, 60)}
    panel = comparison_panel(image, prediction={"streaks": pred}, truth={"streaks": gt}, colors=colors)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .utils.io import write_bytes_atomic

__all__ = [
    "ERROR_COLORS",
    "error_map",
    "PALETTE",
    "assign_colors",
    "overlay",
    "legend",
    "comparison_panel",
    "contact_sheet",
    "bar_chart",
    "line_plot",
    "line_panels",
]

Color = tuple[int, int, int]

#: colours given, in order, to masks the caller gave no colour for.
PALETTE: tuple[Color, ...] = (
    (255, 60, 60),
    (60, 255, 60),
    (0, 200, 255),
    (255, 230, 0),
    (255, 0, 255),
    (255, 140, 0),
    (150, 100, 255),
    (255, 255, 255),
)
_BACKGROUND = 32
_TEXT = (230, 230, 230)
_GAP = 4
_TITLE_H = 18


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) of any range -> (H, W, 3) uint8 (non-uint8 images are stretched between percentiles)."""
    src = np.asarray(image)
    img = src.astype(np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if src.dtype != np.uint8:
        lo, hi = np.percentile(img, (0.5, 99.5))
        img = (img - lo) / max(hi - lo, 1e-6) * 255
    return np.clip(img, 0, 255).astype(np.uint8)


def assign_colors(names: Iterable[str], colors: Mapping[str, Sequence[int]] | None = None) -> dict[str, Color]:
    """
    A colour per name: the caller's from ``colors``, the others from :data:`PALETTE` in order (skipping colours
    the caller already used, while any are left).

    .. code-block:: python

        assign_colors(["a", "b"], {"b": (0, 0, 255)})  # {'a': (255, 60, 60), 'b': (0, 0, 255)}
    """
    colors = {name: tuple(int(c) for c in rgb) for name, rgb in (colors or {}).items()}
    free = [c for c in PALETTE if c not in colors.values()] or list(PALETTE)
    out: dict[str, Color] = {}
    k = 0
    for name in dict.fromkeys(names):
        if name in colors:
            out[name] = colors[name]
        else:
            out[name], k = free[k % len(free)], k + 1
    return out


def _as_mask(mask: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    m = np.asarray(mask) > 0
    if m.ndim == 3:
        m = m.any(axis=-1)
    if m.shape != shape:
        raise ValueError(f"mask '{name}' has shape {m.shape}, the image {shape}.")
    return m


def overlay(
    image: np.ndarray,
    masks: Mapping[str, np.ndarray],
    colors: Mapping[str, Sequence[int]] | None = None,
    alpha: float = 0.45,
    outline: bool = True,
) -> np.ndarray:
    """
    Blend coloured ``masks`` (name -> (H, W) mask, foreground > 0) over ``image`` (H, W[, C]): inside a mask a
    pixel becomes ``(1 - alpha) * pixel + alpha * colour``; ``outline`` also draws each mask's border at full
    colour so thin structures stay visible. Colours come from ``colors``, else :data:`PALETTE` in mask order
    (:func:`assign_colors`). Returns (H, W, 3) uint8.

    .. code-block:: python

        rgb = overlay(image, {"lesion": lesion, "streaks": streaks}, colors={"lesion": (255, 255, 255)})
    """
    out = _rgb(image).astype(np.float32)
    palette = assign_colors(masks, colors)
    for name, mask in masks.items():
        m = _as_mask(mask, out.shape[:2], name)
        color = np.asarray(palette[name], np.float32)
        out[m] = out[m] * (1 - alpha) + color * alpha
        if outline:
            inner = np.zeros_like(m)
            inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
            out[m & ~inner] = color
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def legend(colors: Mapping[str, Sequence[int]], width: int, swatch: int = 12) -> np.ndarray:
    """
    An (h, ``width``, 3) uint8 strip with a ``swatch``-pixel square of each colour followed by its name, entries
    left to right and wrapped onto further lines as needed (h is 0 when ``colors`` is empty).

    .. code-block:: python

        strip = legend({"streaks": (255, 0, 255), "globules": (255, 60, 60)}, width=256)
    """
    if width < 1:
        raise ValueError(f"width must be positive, got {width}.")
    line_h = max(swatch, 10) + 6
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    places, x, y = [], _GAP, 0
    for name in colors:
        w = swatch + 4 + int(np.ceil(draw.textlength(str(name)))) + 2 * _GAP
        if x > _GAP and x + w > width:
            x, y = _GAP, y + line_h
        places.append((name, x, y))
        x += w
    if not places:
        return np.zeros((0, width, 3), np.uint8)
    pil = Image.new("RGB", (width, y + line_h), (_BACKGROUND,) * 3)
    draw = ImageDraw.Draw(pil)
    top = (line_h - swatch) // 2
    for name, x, y in places:
        draw.rectangle((x, y + top, x + swatch - 1, y + top + swatch - 1), fill=tuple(int(c) for c in colors[name]))
        draw.text((x + swatch + 4, y + top), str(name), fill=_TEXT)
    return np.asarray(pil)


def _titled(panels: Sequence[np.ndarray], titles: Sequence[str]) -> np.ndarray:
    """Panels of one height side by side, ``_GAP`` pixels apart, each with its title above."""
    h = panels[0].shape[0]
    width = sum(p.shape[1] for p in panels) + _GAP * (len(panels) - 1)
    pil = Image.new("RGB", (width, _TITLE_H + h), (_BACKGROUND,) * 3)
    draw = ImageDraw.Draw(pil)
    x = 0
    for panel, title in zip(panels, titles, strict=True):
        pil.paste(Image.fromarray(panel), (x, _TITLE_H))
        draw.text((x + 3, 3), title, fill=_TEXT)
        x += panel.shape[1] + _GAP
    return np.asarray(pil)


def comparison_panel(
    image: np.ndarray,
    prediction: Mapping[str, np.ndarray],
    truth: Mapping[str, np.ndarray] | None = None,
    colors: Mapping[str, Sequence[int]] | None = None,
    titles: Sequence[str] = ("image", "ground truth", "prediction"),
    alpha: float = 0.45,
) -> np.ndarray:
    """
    Side by side: ``image``, the ``truth`` overlay (when given) and the ``prediction`` overlay, each name in the
    same colour in both, with ``titles`` above and a legend of every name below. For an (H, W) image the result is
    (18 + H + legend height, 3 W + 8, 3) uint8 (2 W + 4 wide without ``truth``; panels are 4 pixels apart).

    .. code-block:: python

        panel = comparison_panel(image, {"streaks": pred}, {"streaks": gt}, colors={"streaks": (255, 0, 255)})
        save_image_atomic(panel, "ISIC_0000001_panel.png")
    """
    if len(titles) != 3:
        raise ValueError(f"titles must name the image, ground-truth and prediction panels, got {list(titles)}.")
    palette = assign_colors([*(truth or {}), *prediction], colors)
    rgb = _rgb(image)
    panels, shown = [rgb], [titles[0]]
    if truth is not None:
        panels.append(overlay(rgb, truth, palette, alpha=alpha))
        shown.append(titles[1])
    panels.append(overlay(rgb, prediction, palette, alpha=alpha))
    shown.append(titles[2])
    top = _titled(panels, shown)
    return np.concatenate([top, legend(palette, top.shape[1])], axis=0)


#: colours of :func:`error_map`: true positives, false positives, false negatives.
ERROR_COLORS = {"true positive": (60, 200, 60), "false positive": (255, 60, 60), "false negative": (40, 120, 255)}


def error_map(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """
    Where a binary ``prediction`` is right and wrong against ``truth``: true positives, false positives and false
    negatives each in their own colour (:data:`ERROR_COLORS`) over ``image``, with a legend below.

    .. code-block:: python

        panel = error_map(photo, truth_mask, predicted_mask)
        save_image_atomic(panel, "ISIC_0000001_errors.png")
    """
    rgb = _rgb(image)
    t = _as_mask(truth, rgb.shape[:2], "truth")
    p = _as_mask(prediction, rgb.shape[:2], "prediction")
    masks = dict(zip(ERROR_COLORS, (t & p, ~t & p, t & ~p), strict=True))
    shown = overlay(rgb, masks, ERROR_COLORS, alpha=alpha, outline=False)
    return np.concatenate([shown, legend(ERROR_COLORS, shown.shape[1])], axis=0)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str] = (), tile: int = 160) -> np.ndarray:
    """
    Grid of images (each row a sequence of (H, W[, C]) arrays), each resized to ``tile`` pixels high, with column
    ``titles`` above. Returns (H, W, 3) uint8.

    .. code-block:: python

        sheet = contact_sheet([[image, overlay(image, masks)] for image, masks in samples], ["image", "masks"])
    """
    resized = []
    for row in rows:
        cells = []
        for img in row:
            pil = Image.fromarray(_rgb(img))
            width = max(1, round(pil.width * tile / pil.height))
            cells.append(np.asarray(pil.resize((width, tile), Image.NEAREST)))
        resized.append(cells)
    width = max(sum(c.shape[1] + _GAP for c in row) for row in resized)
    header = _TITLE_H if titles else 0
    sheet = np.full((header + len(resized) * (tile + _GAP), width, 3), _BACKGROUND, np.uint8)
    for r, row in enumerate(resized):
        x = 0
        for cell in row:
            y = header + r * (tile + _GAP)
            sheet[y : y + tile, x : x + cell.shape[1]] = cell
            x += cell.shape[1] + _GAP
    if titles:
        pil = Image.fromarray(sheet)
        draw = ImageDraw.Draw(pil)
        col_w = resized[0][0].shape[1] + _GAP
        for i, title in enumerate(titles):
            draw.text((i * col_w + 3, 3), title, fill=_TEXT)
        sheet = np.asarray(pil)
    return sheet


def _save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG at ``path`` (temporary name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    write_bytes_atomic(buffer.getvalue(), path)
    return path


def _figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas, outside pyplot (no global state, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def bar_chart(
    values: Mapping[str, Mapping[str, float]],
    path: str | Path,
    title: str = "",
    ylabel: str = "",
    errors: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """
    Grouped bar chart written as a PNG at ``path``: one group per outer key of ``values``, one bar per inner key
    (coloured alike across groups, named in the legend), with ``errors`` (same shape) as error bars. Returns the path.

    .. code-block:: python

        bar_chart({"fold 0": {"Jaccard": 0.41, "Dice": 0.55}, "fold 1": {"Jaccard": 0.44, "Dice": 0.58}},
                  "scores.png", title="TATL", ylabel="score")
    """
    if not values:
        raise ValueError("bar_chart needs at least one group of values.")
    groups = list(values)
    series = list(dict.fromkeys(k for g in groups for k in values[g]))
    x = np.arange(len(groups))
    width = 0.8 / len(series)
    fig = _figure(max(4.0, 1.2 + 0.35 * len(groups) * len(series)), 3.5)
    ax = fig.add_subplot()
    for j, name in enumerate(series):
        heights = [values[g].get(name, np.nan) for g in groups]
        err = None if errors is None else [errors.get(g, {}).get(name, 0.0) for g in groups]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, heights, width, yerr=err, capsize=3, label=str(name))
    long = max(len(str(g)) for g in groups) > 8
    ax.set_xticks(x, [str(g) for g in groups], rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save_figure(fig, path)


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    errors: Mapping[str, Sequence[float]] | None = None,
) -> Path:
    """
    Line plot written as a PNG at ``path``: one line per entry of ``series`` over ``x``, with ``errors`` (same
    shape) drawn as a shaded band of +/- the error. Returns the path.

    .. code-block:: python

        line_plot([1, 2, 3], {"train": [0.9, 0.5, 0.3], "val": [1.0, 0.7, 0.6]}, "loss.png", xlabel="epoch")
    """
    if not series:
        raise ValueError("line_plot needs at least one series.")
    lines = {name: (x, ys) for name, ys in series.items()}
    return line_panels({title: lines}, path, xlabel=xlabel, ylabel=ylabel, errors={title: dict(errors or {})})


def line_panels(
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    path: str | Path,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    errors: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    columns: int = 3,
) -> Path:
    """
    Line plots side by side (up to ``columns`` a row) written as one PNG at ``path``: one panel per entry of
    ``panels`` (its title), one line per ``{name: (x, y)}`` in it, each with its own x values; ``errors[panel][name]``
    (the shape of y) is drawn as a shaded band of +/- the error. A line keeps its colour in every panel. Returns
    the path.

    .. code-block:: python

        line_panels({"streaks": {"train": ([100, 200], [0.9, 0.6])}, "globules": {"train": ([100], [0.8])}},
                    "loss.png", xlabel="step", ylabel="loss")
    """
    if not panels or not all(panels.values()):
        raise ValueError("line_panels needs at least one panel, each with at least one line.")
    names = list(dict.fromkeys(n for lines in panels.values() for n in lines))
    colors = {n: f"C{i % 10}" for i, n in enumerate(names)}
    cols = min(columns, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(1.0 + 4.0 * cols, 0.4 + 3.2 * rows)
    for k, (panel, lines) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, k + 1)
        for name, (xs, ys) in lines.items():
            xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
            if ys.shape != xs.shape:
                raise ValueError(f"line '{name}' of '{panel}' has {ys.size} values for {xs.size} x values.")
            ax.plot(xs, ys, marker="o", markersize=3, label=str(name), color=colors[name])
            err = (errors or {}).get(panel, {}).get(name)
            if err is not None:
                err = np.asarray(err, np.float64)
                ax.fill_between(xs, ys - err, ys + err, color=colors[name], alpha=0.2, linewidth=0)
        ax.set_title(panel)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(names) > 1 and k == cols - 1:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title and len(panels) > 1:
        fig.suptitle(title)
    return _save_figure(fig, path)
