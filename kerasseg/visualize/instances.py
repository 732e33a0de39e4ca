"""Instance overlays: each detection's mask blended in its own colour, its outline, box and label.

result = kerasseg.inference.predict(model, image)
picture = kerasseg.visualize.draw_instances(image, result, model.class_names)
kerasseg.visualize.save_image("instances.png", picture)
"""

import colorsys

import cv2
import numpy as np

from kerasseg.visualize.colour import as_rgb

__all__ = ["draw_instances", "instance_colours", "instance_pair"]


def instance_colours(count):
    """``(count, 3)`` uint8 RGB colours, bright and far apart (the hue steps by the golden
    angle), the same for the same index."""
    colours = np.zeros((count, 3), np.uint8)
    for index in range(count):
        hue = (index * 0.618033988749895 + 0.1) % 1.0
        value = 1.0 if index % 2 == 0 else 0.8
        colours[index] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.85, value)) * 255)
    return colours


def _result_arrays(result, height, width):
    boxes = np.asarray(result.get("boxes", np.zeros((0, 4))), np.float64).reshape(-1, 4)
    count = len(boxes)
    classes = np.asarray(result.get("classes", np.zeros(count)), np.int64).reshape(-1)
    scores = result.get("scores")
    scores = None if scores is None else np.asarray(scores, np.float64).reshape(-1)
    masks = result.get("masks")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != (count, height, width):
            raise ValueError(
                f"result masks must be ({count}, {height}, {width}) (one per box, at the image's "
                f"size); got shape {masks.shape}."
            )
        masks = masks > 0
    if len(classes) != count or (scores is not None and len(scores) != count):
        raise ValueError(
            f"result has {count} boxes, {len(classes)} classes and "
            f"{'no' if scores is None else len(scores)} scores; they must match."
        )
    return boxes, classes, scores, masks


def _label(picture, text, colour, box, scale, thickness):
    font = cv2.FONT_HERSHEY_SIMPLEX
    (text_w, text_h), base = cv2.getTextSize(text, font, scale, thickness)
    height, width = picture.shape[:2]
    x = int(np.clip(round(box[1]), 0, max(width - text_w - 2, 0)))
    top = int(round(box[0])) - text_h - base - 2
    if top < 0:  # no room above the box: inside it
        top = int(np.clip(round(box[0]), 0, max(height - text_h - base - 2, 0)))
    cv2.rectangle(picture, (x, top), (x + text_w + 2, top + text_h + base + 2), colour, -1)
    bright = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150
    ink = (0, 0, 0) if bright else (255, 255, 255)
    cv2.putText(picture, text, (x + 1, top + text_h + 1), font, scale, ink, thickness, cv2.LINE_AA)


def draw_instances(
    image, result, class_names=None, palette=None, score=True, alpha=0.5, boxes=True
):
    """An RGB uint8 picture of instance detections over ``image``.

    Args:
        image: RGB (H, W, 3) or grayscale (H, W) image.
        result: a ``detect`` / ``predict`` result: ``boxes`` [M, 4] y1, x1, y2, x2 pixels,
            ``classes`` [M], ``scores`` [M] (optional), ``masks`` [M, H, W] (optional).
        class_names: names by class index (default ``class_<i>``).
        palette: (P, 3) RGB colours used instance by instance (cycled); default
            ``instance_colours``: each instance its own colour.
        score: append the score to each label ("name 0.93").
        alpha: the colour's weight over the image inside a mask, in [0, 1].
        boxes: draw the boxes (labels are drawn either way).

    Returns:
        uint8 (H, W, 3). The lowest-scoring instance is drawn first, so the best is on top.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}.")
    picture = as_rgb(image).copy()
    height, width = picture.shape[:2]
    box_array, classes, scores, masks = _result_arrays(result, height, width)
    count = len(box_array)
    if palette is None:
        colours = instance_colours(count)
    else:
        colours = np.asarray(palette)
        if colours.ndim != 2 or colours.shape[1] != 3 or not len(colours):
            raise ValueError(f"palette must be (P, 3) RGB colours; got shape {colours.shape}.")
        colours = np.clip(colours, 0, 255).astype(np.uint8)[np.arange(count) % len(colours)]
    order = np.arange(count) if scores is None else np.argsort(scores, kind="stable")
    thickness = max(1, int(round(min(height, width) / 250)))
    scale = max(0.35, min(height, width) / 800)
    for index in order:
        colour = tuple(int(c) for c in colours[index])
        if masks is not None and masks[index].any():
            inside = masks[index]
            blended = (1.0 - alpha) * picture[inside] + alpha * colours[index].astype(np.float64)
            picture[inside] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
            contours, _ = cv2.findContours(
                inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            cv2.drawContours(picture, contours, -1, colour, thickness, cv2.LINE_AA)
    for index in order:
        colour = tuple(int(c) for c in colours[index])
        y1, x1, y2, x2 = box_array[index]
        if boxes:
            top_left = (int(round(x1)), int(round(y1)))
            bottom_right = (int(round(x2)) - 1, int(round(y2)) - 1)
            cv2.rectangle(picture, top_left, bottom_right, colour, thickness)
        label = int(classes[index])
        if class_names is not None and 0 <= label < len(class_names):
            name = str(class_names[label])
        else:
            name = f"class_{label}"
        text = f"{name} {scores[index]:.2f}" if score and scores is not None else name
        _label(picture, text, colour, box_array[index], scale, max(1, thickness // 2))
    return picture


def _enlarged(image, result, scale):
    """The image and a result (boxes, masks) ``scale`` times larger (nearest neighbour), so the
    labels drawn on a small image are legible."""
    big = dict(result)
    big["boxes"] = np.asarray(result["boxes"], np.float32).reshape(-1, 4) * scale
    masks = np.asarray(result["masks"]).astype(bool)
    big["masks"] = masks.repeat(scale, axis=1).repeat(scale, axis=2)
    return image.repeat(scale, axis=0).repeat(scale, axis=1), big


def instance_pair(image, truth, prediction, names, titles=("ground truth", "prediction"), gap=8):
    """truth | prediction (both ``draw_instances`` results: boxes, classes, masks; the
    prediction with scores), side by side under their titles, enlarged to about 256 px."""
    from kerasseg.visualize.legend import title_row

    image = as_rgb(image)
    scale = max(1, 256 // max(image.shape[:2]))
    big, truth = _enlarged(image, truth, scale)
    _, prediction = _enlarged(image, prediction, scale)
    space = np.full((big.shape[0], gap, 3), 255, np.uint8)
    left = draw_instances(big, truth, names, score=False)
    right = draw_instances(big, prediction, names)
    strip = title_row(titles, [left.shape[1], right.shape[1]], gap=gap)
    return np.concatenate([strip, np.concatenate([left, space, right], axis=1)], axis=0)
