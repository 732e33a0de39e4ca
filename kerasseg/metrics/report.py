"""A confusion matrix's figures as a JSON-able summary and as a printable table."""

import json
import math

import numpy as np

from kerasseg.metrics.scores import confusion_matrix_scores

__all__ = ["format_report", "summarize_confusion_matrix"]


def _py(value):
    value = float(value)
    return None if math.isnan(value) else value


def summarize_confusion_matrix(cm, class_names=None):
    """JSON-able summary of a confusion matrix (rows truth, columns prediction).

    Returns ``{"num_classes", "pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "mean_dice",
    "total_pixels", "classes": [{"name", "iou", "accuracy", "dice", "gt_pixels", "pred_pixels",
    "true_positives"}, ...]}``; undefined scores are ``None``.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"A confusion matrix must be square; got shape {cm.shape}.")
    n = cm.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(n)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != n:
        raise ValueError(f"Got {len(class_names)} class names for {n} classes.")
    scores = {k: v.numpy() for k, v in confusion_matrix_scores(cm).items()}
    classes = []
    for i, name in enumerate(class_names):
        classes.append(
            {
                "name": name,
                "iou": _py(scores["iou"][i]),
                "accuracy": _py(scores["accuracy"][i]),
                "dice": _py(scores["dice"][i]),
                "gt_pixels": float(scores["gt_pixels"][i]),
                "pred_pixels": float(scores["pred_pixels"][i]),
                "true_positives": float(scores["true_positives"][i]),
            }
        )
    summary = {"num_classes": n, "total_pixels": float(cm.sum())}
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "mean_dice"):
        summary[key] = _py(scores[key])
    summary["classes"] = classes
    json.dumps(summary)  # fail here, not in the caller's json.dump, if something is not JSON-able
    return summary


def format_report(summary, digits=2):
    """Renders ``summarize_confusion_matrix``'s dict as a fixed-width table (scores in %)."""

    def pct(v):
        return "n/a" if v is None else f"{100.0 * v:.{digits}f}"

    rows = [
        (
            c["name"],
            pct(c["iou"]),
            pct(c["accuracy"]),
            pct(c["dice"]),
            f"{c['gt_pixels']:.0f}",
            f"{c['pred_pixels']:.0f}",
        )
        for c in summary["classes"]
    ]
    header = ("class", "IoU", "Acc", "Dice", "GT pixels", "Pred pixels")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    out = [line(header), "-" * len(line(header))]
    out += [line(r) for r in rows]
    out.append("-" * len(line(header)))
    out.append(
        f"mIoU {pct(summary['mean_iou'])}  mAcc {pct(summary['mean_accuracy'])}  "
        f"mDice {pct(summary['mean_dice'])}  aAcc {pct(summary['pixel_accuracy'])}  "
        f"fwIoU {pct(summary['fw_iou'])}  ({summary['total_pixels']:.0f} valid pixels)"
    )
    return "\n".join(out)
