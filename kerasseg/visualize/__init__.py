"""Colour palettes, colour masks, overlays, side-by-side grids and plots.

All images here are RGB uint8 arrays; ``save_image`` converts to OpenCV's BGR when writing.

    colours = kerasseg.visualize.palette(21)               # VOC colours, (21, 3) uint8
    kerasseg.visualize.save_image("mask.png", kerasseg.visualize.colorize(labels, colours))
    kerasseg.visualize.save_image("overlay.png", kerasseg.visualize.overlay(image, labels, colours))
    kerasseg.visualize.save_label_png("labels.png", labels, colours)  # indices, shown in colour
    kerasseg.visualize.grid(images, truths, predictions, colours, path="val.png",
                            titles=("image", "ground truth", "prediction"), class_names=names)
    kerasseg.visualize.with_legend(overlay, labels, names, colours)  # a legend strip below
    kerasseg.visualize.plot_history(history, "curves.png")  # History, dict or CSVLogger file
    kerasseg.visualize.draw_instances(image, detections, class_names)  # instance overlay
    kerasseg.visualize.panoptic_overlay(image, panoptic, colours, thing_classes)  # panoptic

Plots are ``matplotlib.figure.Figure`` objects drawn on the Agg canvas without pyplot, so they
work on machines without a display and leave pyplot's global state alone. Modules: ``colour``
(palette, colorize, overlay), ``images`` (save_image, save_label_png, grid), ``legend`` (column
titles, class legends and the enlargement of tiny images, drawn with OpenCV), ``plots``,
``instances`` (draw_instances, instance_colours), ``panoptic`` (panoptic_overlay,
colorize_panoptic, instance_shade), ``report`` (the evaluation report page:
``evaluation_report(model, dataset, folder)``, ``write_report``).
"""

from kerasseg.visualize.colour import IGNORE_COLOUR, as_mask, as_rgb, colorize, overlay, palette
from kerasseg.visualize.images import grid, save_image, save_label_png
from kerasseg.visualize.instances import draw_instances, instance_colours, instance_pair
from kerasseg.visualize.legend import enlarge, legend, present_classes, title_row, with_legend
from kerasseg.visualize.panoptic import (
    colorize_panoptic,
    instance_shade,
    panoptic_boundaries,
    panoptic_overlay,
)
from kerasseg.visualize.plots import (
    normalize_confusion_matrix,
    plot_confusion_matrix,
    plot_history,
    plot_per_class_iou,
)
from kerasseg.visualize.report import evaluation_report, score_images, write_report

__all__ = [
    "evaluation_report",
    "score_images",
    "write_report",
    "palette",
    "colorize",
    "overlay",
    "save_image",
    "save_label_png",
    "grid",
    "title_row",
    "legend",
    "with_legend",
    "present_classes",
    "enlarge",
    "plot_history",
    "plot_confusion_matrix",
    "plot_per_class_iou",
    "normalize_confusion_matrix",
    "IGNORE_COLOUR",
    "as_mask",
    "as_rgb",
    "draw_instances",
    "instance_colours",
    "instance_pair",
    "panoptic_overlay",
    "colorize_panoptic",
    "instance_shade",
    "panoptic_boundaries",
]
