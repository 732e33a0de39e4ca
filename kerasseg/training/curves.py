"""Training curves (the run's curves.png), drawn with matplotlib's Agg canvas without pyplot.

``kerasseg.visualize.plot_history`` is this function; it lives with training because a run
draws its own curves (visualize sits above training and may import it, not the reverse).
"""

import csv
import math
import os

import numpy as np

__all__ = ["plot_history", "read_history_series"]


def _history_file(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"plot_history: no such history file: {path!r}.")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"plot_history: {path!r} has no rows (expected a CSVLogger file).")
    history = {
        key: [float(r[key]) if r[key] not in ("", "NA", None) else math.nan for r in rows]
        for key in rows[0]
    }
    return history.pop("epoch", None), history


def read_history_series(history):
    """-> (epochs, {name: values}) from a History, a dict of lists or a CSVLogger file."""
    if hasattr(history, "history") and isinstance(history.history, dict):
        epochs, history = getattr(history, "epoch", None), history.history
    elif isinstance(history, dict):
        epochs = None
    elif isinstance(history, (str, os.PathLike)):
        epochs, history = _history_file(history)
    else:
        raise ValueError(
            "plot_history takes a keras History, a dict of per-epoch lists or the "
            f"path of a CSVLogger file; got {type(history).__name__}."
        )
    series = {str(k): np.asarray(v, np.float64).ravel() for k, v in history.items()}
    # A column that is NaN throughout (e.g. validation metrics of a run that never
    # validated) would be an empty panel.
    series = {k: v for k, v in series.items() if v.size and not np.all(np.isnan(v))}
    if not series:
        raise ValueError("plot_history: the history holds no values.")
    length = max(len(v) for v in series.values())
    if epochs is None or len(epochs) != length:
        epochs = range(length)
    # Epochs are shown counting from 1, as Keras prints them.
    return np.asarray(epochs, np.float64) + 1, series


def _panel(ax, name, epochs, series):
    curves = [(name, "validation" if name.startswith("val_") else "train")]
    if f"val_{name}" in series:
        curves.append((f"val_{name}", "validation"))
    for key, label in curves:
        values = series[key]
        ax.plot(
            epochs[: len(values)],
            values,
            marker="o" if len(values) < 30 else None,
            markersize=3,
            label=label,
        )
    ax.set_title(name)
    ax.set_xlabel("epoch")
    ax.grid(True, alpha=0.3)
    if name in ("lr", "learning_rate") and np.all(series[name] > 0):
        ax.set_yscale("log")
    if len(ax.lines) > 1:
        ax.legend()


def plot_history(history, path=None):
    """Training curves, one panel per metric with its ``val_`` counterpart on the same axes.

    Args:
        history: ``model.fit``'s History, its ``.history`` dict, or a CSVLogger file path.
        path: if given, the figure is written there (format from the extension).

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs, series = read_history_series(history)
    names = [k for k in series if not k.startswith("val_")]
    # A validation metric logged without its training twin still gets a panel.
    names += [k for k in series if k.startswith("val_") and k[4:] not in series]
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        _panel(fig.add_subplot(rows, cols, i + 1), name, epochs, series)
    if path is not None:
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig
