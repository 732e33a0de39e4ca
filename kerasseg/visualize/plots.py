"""Plots: training curves (``plot_history``, kept with training, which draws a run's
curves.png), the confusion matrix heat map and per-class IoU bars.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so they work on headless
machines and do not touch pyplot's global state; show one in a notebook by leaving it as the
cell's value, or pass ``path`` to write it.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kerasseg.training.curves import plot_history

__all__ = [
    "plot_history",
    "plot_confusion_matrix",
    "plot_per_class_iou",
    "normalize_confusion_matrix",
]

# Above this many classes the per-cell numbers become unreadable and are left out.
_MAX_ANNOTATED_CLASSES = 25


def _class_names(class_names, n):
    if class_names is None:
        return [str(i) for i in range(n)]
    names = [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"Got {len(names)} class names for {n} classes.")
    return names


def _new_figure(width, height):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    if path is not None:
        fig.savefig(str(path), dpi=100)
    return fig


def normalize_confusion_matrix(cm):
    """Rows divided by their sums (recall per true class); rows without pixels stay 0."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)


def plot_confusion_matrix(cm, class_names=None, normalize=True, path=None):
    """Heat map of a confusion matrix (rows: ground truth, columns: prediction).

    Args:
        cm: square array, e.g. ``kerasseg.metrics.ConfusionMatrix(...).confusion_matrix()``.
        class_names: labels for the axes (default: class indices).
        normalize: divide each row by its number of ground-truth pixels, so the diagonal is the
            per-class accuracy; otherwise raw pixel counts are shown.
        path: if given, the figure is also saved there (format from the extension).

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"A confusion matrix must be square; got shape {cm.shape}.")
    n = cm.shape[0]
    names = _class_names(class_names, n)
    values = normalize_confusion_matrix(cm) if normalize else cm

    size = min(4.0 + 0.35 * n, 20.0)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(values.max(), 1.0)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="share of true class" if normalize else "pixels")
    ax.set_xticks(range(n), names, rotation=90 if n > 8 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (row-normalized)" if normalize else ""))
    if n <= _MAX_ANNOTATED_CLASSES:
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text = f"{v:.2f}" if normalize else f"{v:.0f}"
                # Dark text on light cells, light text on dark ones.
                colour = "white" if v > 0.6 * vmax else "black"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=7)
    return _finish(fig, path)


def plot_per_class_iou(ious, class_names=None, path=None):
    """Horizontal bar chart of per-class IoU in [0, 1] with the mean IoU as a line.

    NaN entries (classes absent from truth and prediction) are drawn as "n/a" and left out of the
    mean, matching ``kerasseg.metrics.MeanIoU``.
    """
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    n = ious.size
    names = _class_names(class_names, n)
    defined = ~np.isnan(ious)

    fig = _new_figure(7.0, max(2.5, 0.3 * n + 1.2))
    ax = fig.add_subplot()
    positions = np.arange(n)
    ax.barh(positions, np.where(defined, ious, 0.0), color="tab:blue")
    for y, (v, ok) in enumerate(zip(ious, defined)):
        ax.text(
            min(v, 0.9) + 0.01 if ok else 0.01,
            y,
            f"{100 * v:.1f}" if ok else "n/a",
            va="center",
            fontsize=8,
        )
    if defined.any():
        mean = float(ious[defined].mean())
        ax.axvline(mean, color="tab:red", linestyle="--", label=f"mIoU {100 * mean:.1f}")
        ax.legend(loc="lower right")
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("IoU")
    ax.set_title("Per-class IoU")
    return _finish(fig, path)
