"""The evaluation report: one self-contained HTML page (pictures embedded as PNG data, no
network) to look at where a semantic model fails.

    summary = kerasseg.visualize.evaluation_report(model, "camvid", "report/", data_dir="~/data")

Sections, each a ``<section id=...>``: ``metrics`` (mIoU, mAcc, aAcc, FWIoU, mean Dice),
``classes`` (per-class IoU bars, with accuracy and Dice), ``confusion`` (the row-normalised
confusion matrix as a heat map with class names), ``worst`` and ``best`` (the images with the
lowest and highest per-image mIoU, each as image | ground truth | prediction | errors with the
legend of its classes), and ``curves`` (the run's training curves, when a history.csv is given).
The numbers are those of one pass over the split, the same ``summary`` the caller writes to JSON.
"""

import base64
import heapq
import html
import io
import os

import cv2
import numpy as np

from kerasseg.visualize.colour import colorize
from kerasseg.visualize.legend import enlarge, legend, present_classes, text_scale, title_row

__all__ = [
    "score_images",
    "write_report",
    "write_instance_report",
    "instance_report",
    "evaluation_report",
    "error_map",
    "REPORT_NAME",
]

REPORT_NAME = "report.html"
COLUMNS = ("image", "ground truth", "prediction", "errors")
RIGHT, WRONG, IGNORED = (215, 215, 215), (220, 30, 30), (0, 0, 0)
METRICS = (  # summary key, table label, what it is
    ("mean_iou", "mIoU", "mean over classes of TP / (TP + FP + FN)"),
    ("mean_accuracy", "mAcc", "mean over classes of the share of their pixels found"),
    ("pixel_accuracy", "aAcc", "share of all labelled pixels predicted right"),
    ("fw_iou", "FWIoU", "IoU weighted by each class's share of the pixels"),
    ("mean_dice", "Dice", "mean over classes of 2 TP / (2 TP + FP + FN)"),
)


def image_miou(confusion):
    """Mean IoU over the classes present in an image's truth or prediction (NaN if none)."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0])) if np.any(union > 0) else np.nan


def error_map(truth, prediction, ignore_index=255):
    """RGB: right pixels light grey, wrong ones red, ignored ones black."""
    out = np.empty((*truth.shape, 3), np.uint8)
    out[:] = RIGHT
    out[truth != prediction] = WRONG
    out[truth == ignore_index] = IGNORED
    return out


def score_images(model, raw, num_classes, ignore_index=255, keep=4, steps=None, predict=None):
    """One pass over ``raw`` (image, mask) pairs: -> (confusion [K, K], per-image mIoUs,
    the ``keep`` worst and ``keep`` best samples as (mIoU, index, image, truth, prediction),
    worst first and best first). ``predict(model, image)`` gives a class map (default
    ``kerasseg.inference.predict``, which pads to the model's input multiple)."""
    if predict is None:
        from kerasseg.inference import predict
    total = np.zeros((num_classes, num_classes), np.int64)
    scores, worst, best = [], [], []
    for index, (image, truth) in enumerate(raw.as_numpy_iterator()):
        if steps is not None and index >= steps:
            break
        labels = np.asarray(predict(model, image)).astype(np.int64)
        valid = truth != ignore_index
        pair = truth[valid].astype(np.int64) * num_classes + labels[valid]
        confusion = np.bincount(pair, minlength=num_classes**2).reshape(num_classes, -1)
        total += confusion
        miou = image_miou(confusion)
        scores.append(miou)
        if np.isnan(miou):
            continue
        sample = (miou, index, image, truth, labels.astype(np.int32))
        # Keys are unique (they hold the index), so samples themselves are never compared.
        _keep(worst, (-miou, -index), sample, keep)
        _keep(best, (miou, -index), sample, keep)
    worst = [s for _, s in sorted(worst, reverse=True)]
    best = [s for _, s in sorted(best, reverse=True)]
    return total, scores, worst, best


def _keep(heap, key, sample, size):
    """Keep in ``heap`` the ``size`` samples of the largest keys."""
    if len(heap) < size:
        heapq.heappush(heap, (key, sample))
    elif key > heap[0][0]:
        heapq.heapreplace(heap, (key, sample))


# --------------------------------------------------------------------------- the page


def _png(rgb):
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode a report picture as PNG")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _figure_png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pct(value):
    return "n/a" if value is None else f"{100.0 * value:.2f}"


def _metrics_section(summary):
    rows = "".join(
        f'<tr><th>{label}</th><td class="value" data-key="{key}" data-value="{summary[key]}">'
        f"{_pct(summary[key])}</td><td>{html.escape(what)}</td></tr>"
        for key, label, what in METRICS
    )
    return (
        '<section id="metrics"><h2>Scores</h2><table class="metrics">'
        f"<tr><th>metric</th><th>%</th><th>what it is</th></tr>{rows}</table>"
        f"<p>{int(summary['total_pixels'])} labelled pixels.</p></section>"
    )


def _classes_section(summary, palette):
    rows = []
    for i, c in enumerate(summary["classes"]):
        colour = "#%02x%02x%02x" % tuple(int(v) for v in palette[i])
        width = 0 if c["iou"] is None else 100.0 * c["iou"]
        rows.append(
            f'<tr class="class" data-class="{html.escape(c["name"])}" data-iou="{c["iou"]}">'
            f'<td><span class="swatch" style="background:{colour}"></span>'
            f"{html.escape(c['name'])}</td>"
            f'<td class="bar"><div style="width:{width:.1f}%"></div></td>'
            f"<td>{_pct(c['iou'])}</td><td>{_pct(c['accuracy'])}</td><td>{_pct(c['dice'])}</td>"
            f"<td>{int(c['gt_pixels'])}</td></tr>"
        )
    return (
        '<section id="classes"><h2>Per class</h2><table class="classes"><tr><th>class</th>'
        "<th>IoU</th><th>IoU %</th><th>accuracy %</th><th>Dice %</th><th>true pixels</th></tr>"
        + "".join(rows)
        + "</table><p>n/a: the class is in neither the truth nor the predictions.</p></section>"
    )


def _confusion_section(confusion, names):
    from kerasseg.visualize.plots import plot_confusion_matrix

    fig = plot_confusion_matrix(confusion, names, normalize=True)
    return (
        '<section id="confusion"><h2>Confusion matrix</h2><p>Rows: the true class, columns: '
        "the predicted one; each row divided by its pixels, so the diagonal is each class's "
        f'accuracy.</p><img alt="confusion matrix" src="{_figure_png(fig)}"></section>'
    )


def sample_picture(image, truth, prediction, names, palette, ignore_index=255):
    """image | ground truth | prediction | errors, titled, with the legend of its classes."""
    image, truth, prediction = enlarge(image, truth, prediction, min_side=160)
    cells = [
        np.asarray(image, np.uint8)[..., :3],
        colorize(truth, palette, ignore_index),
        colorize(prediction, palette, ignore_index),
        error_map(truth, prediction, ignore_index),
    ]
    gap = 4
    space = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
    row = np.concatenate([part for cell in cells for part in (cell, space)][:-1], axis=1)
    widths = [cell.shape[1] for cell in cells]
    scale = text_scale(min(widths))
    titles = title_row(COLUMNS, widths, gap=gap, scale=scale)
    classes = present_classes(truth, prediction, ignore_index=ignore_index)
    parts = [titles, row]
    if classes:
        parts.append(legend(classes, names, palette, row.shape[1], scale=scale))
    width = max(p.shape[1] for p in parts)
    padded = [
        np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in parts
    ]
    return np.concatenate(padded, axis=0)


def _samples_section(key, heading, samples, names, palette, ignore_index):
    figures = []
    for miou, index, image, truth, pred in samples:
        picture = _png(sample_picture(image, truth, pred, names, palette, ignore_index))
        figures.append(
            f'<figure class="sample" data-index="{index}" data-miou="{miou}">'
            f'<img alt="image {index}" src="{picture}">'
            f"<figcaption>image {index}: mIoU {_pct(miou)} %</figcaption></figure>"
        )
    return f'<section id="{key}"><h2>{heading}</h2>{"".join(figures)}</section>'


def _curves_section(history):
    from kerasseg.training.curves import plot_history

    fig = plot_history(history)
    return (
        '<section id="curves"><h2>Training curves</h2>'
        f'<img alt="training curves" src="{_figure_png(fig)}"></section>'
    )


STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
table.metrics td.value { font-weight: bold; font-size: 1.2em; }
td.bar { width: 320px; } td.bar div { background: #3b78c2; height: 12px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
          border: 1px solid #888; vertical-align: middle; }
figure.sample { display: inline-block; margin: 8px; } img { max-width: 100%; }
"""


def write_report(
    folder,
    summary,
    confusion,
    worst,
    best,
    palette,
    *,
    title="kerasseg evaluation",
    subtitle="",
    history=None,
    ignore_index=255,
):
    """Write ``folder/report.html`` (created; the file is replaced) and return its path."""
    names = [c["name"] for c in summary["classes"]]
    palette = np.asarray(palette, np.uint8)
    sections = [
        _metrics_section(summary),
        _classes_section(summary, palette),
        _confusion_section(confusion, names),
        _samples_section("worst", "Worst images", worst, names, palette, ignore_index),
        _samples_section("best", "Best images", best, names, palette, ignore_index),
    ]
    return _write_page(folder, title, subtitle, sections, history)


def _write_page(folder, title, subtitle, sections, history=None):
    if history is not None and os.path.isfile(history):
        sections = [*sections, _curves_section(history)]
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
        + "".join(sections)
        + "</body></html>"
    )
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, REPORT_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def write_instance_report(folder, stats, pairs, *, title, subtitle="", history=None):
    """``folder/report.html`` for an instance model: the COCO table (``stats``: {"box": {...},
    "mask": {...}} as ``coco_evaluate`` gives it) and ``pairs`` of (index, truth | prediction
    picture); -> its path."""
    from kerasseg.training.instance_scores import TABLE_COLUMNS as COCO_COLUMNS

    head = "".join(f"<th>{name}</th>" for name in COCO_COLUMNS)
    rows = []
    for kind, values in stats.items():
        cells = "".join(
            f'<td class="value" data-key="{kind}_{name}" data-value="{values.get(name)}">'
            f"{_pct(_finite(values.get(name)))}</td>"
            for name in COCO_COLUMNS
        )
        rows.append(f"<tr><th>{html.escape(kind)}</th>{cells}</tr>")
    table = (
        '<section id="metrics"><h2>COCO average precision (%)</h2><table class="metrics">'
        f"<tr><th></th>{head}</tr>{''.join(rows)}</table><p>pycocotools' COCOeval; "
        "n/a: no ground truth of that size.</p></section>"
    )
    figures = "".join(
        f'<figure class="sample" data-index="{index}"><img alt="image {index}" '
        f'src="{_png(picture)}"><figcaption>image {index}</figcaption></figure>'
        for index, picture in pairs
    )
    samples = f'<section id="samples"><h2>Images</h2>{figures}</section>'
    return _write_page(folder, title, subtitle, [table, samples], history)


def _finite(value):
    return None if value is None or not np.isfinite(value) else value


def evaluation_report(
    model,
    dataset,
    folder,
    *,
    data_dir=None,
    split="val",
    dataset_options=None,
    keep=4,
    steps=None,
    history=None,
):
    """Score ``model`` on a dataset split image by image and write the report into ``folder``;
    -> (``metrics.summarize_confusion_matrix``'s summary, the report's path)."""
    from kerasseg import datasets, metrics
    from kerasseg.models.segmenter import describe
    from kerasseg.training import class_names_for, dataset_meta, through_pipeline

    options = dict(dataset_options or {})
    meta = dataset_meta(dataset, data_dir, options)
    raw = datasets.load(dataset, data_dir=data_dir, split=split, **options)
    info = describe(model)
    count = max(2, int(model.outputs[0].shape[-1]))  # a one-channel model: background and it
    names = list(class_names_for(model, meta.class_names))
    if len(names) != count:
        names = list(meta.class_names)
    palette = np.asarray(info["palette"], np.uint8)
    if len(palette) != count:
        palette = np.asarray(meta.palette, np.uint8)[:count]
    confusion, scores, worst, best = through_pipeline(
        lambda: score_images(model, raw, count, meta.ignore_index, keep, steps)
    )
    summary = metrics.summarize_confusion_matrix(confusion, names)
    path = write_report(
        folder,
        summary,
        confusion,
        worst,
        best,
        palette,
        title=f"{info.get('builder') or model.name} on {dataset} ({split})",
        subtitle=f"{len(scores)} images scored one by one at their own size.",
        history=history,
        ignore_index=meta.ignore_index,
    )
    return summary, path


def instance_report(model, stats, examples, folder, *, title, history=None, threshold=0.5):
    """The instance page for ``examples`` (image, target) pairs: the truth and the model's
    detections scoring at least ``threshold``; -> its path."""
    from kerasseg.inference import predict
    from kerasseg.models.segmenter import describe
    from kerasseg.visualize.instances import instance_pair

    names = list(describe(model)["class_names"])
    pairs = []
    for index, (image, target) in enumerate(examples):
        prediction = predict(model, image, score_threshold=threshold)
        truth = {k: target[k] for k in ("boxes", "classes", "masks")}
        pairs.append((index, instance_pair(image, truth, prediction, names)))
    subtitle = f"Detections scoring at least {threshold} drawn; the scores count every one."
    return write_instance_report(
        folder, stats, pairs, title=title, subtitle=subtitle, history=history
    )
