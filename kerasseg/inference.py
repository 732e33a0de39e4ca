"""Prediction on images of any size: padding to the model's multiple, sliding windows, TTA.

    labels = kerasseg.inference.predict(model, image)                # (H, W) int32
    labels = kerasseg.inference.predict(model, batch, tile=512)      # (N, H, W), sliding window
    labels, probs = kerasseg.inference.predict(model, images, scales=(0.75, 1.0, 1.25), flip=True,
                                               return_probabilities=True)

Every image is padded (edge pixels repeated, never zeros: a black border would read as an object
edge) up to the model's multiple, predicted, and cropped back, so the class map always has the
image's own size. Whatever the model's last activation, scores are turned into probabilities
first (softmax for logits, sigmoid for a single logit channel), and all blending of windows,
scales and flips averages probabilities, as mmsegmentation does.

Sliding windows (``tile``) follow mmsegmentation's slide inference: ``n = max(L - t + s - 1, 0)
// s + 1`` windows per axis with stride ``s = t * (1 - overlap)``, the last one moved back to the
image edge. Where windows overlap their probabilities are blended with a separable Hann weight
(``sin^2``, highest in the window centre): pixels near a window's border see less context and
predict worse, so centre-weighted blending removes the seams a flat average leaves. Pixels only
one window covers get that window's probabilities exactly, whatever their weight.
"""
import math
import weakref

import numpy as np
import tensorflow as tf

__all__ = ["predict", "DEFAULT_MULTIPLE"]

# Every kerasseg architecture with a backbone downsamples 32x; smaller multiples (the paper U-Net
# at depth 3 needs 8) divide 32, so padding to 32 is always accepted.
DEFAULT_MULTIPLE = 32

# A tiny floor under the Hann weight keeps the blend well conditioned at window corners.
_MIN_WEIGHT = 1e-3


# ----------------------------------------------------------------------------- model properties

def model_multiple(model, multiple=None):
    """The side multiple inputs are padded to: the argument, a model attribute, or 32."""
    if multiple is None:
        multiple = getattr(model, "input_multiple", None) or DEFAULT_MULTIPLE
    if isinstance(multiple, bool) or int(multiple) != multiple or multiple < 1:
        raise ValueError(f"multiple must be a positive integer; got {multiple!r}.")
    return int(multiple)


def model_channels(model):
    shape = model.inputs[0].shape
    return int(shape[-1]) if shape[-1] is not None else 3


def model_static_size(model):
    """(H, W) when the model was built for one input size, else None."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) == 4 and shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    return None


def output_kind(model):
    """'softmax', 'sigmoid' or 'logits': what the model's main output holds.

    Read from the activation of the layer that produces the (first) output; a layer whose
    activation cannot be told is taken as already holding probabilities.
    """
    output = model.outputs[0]
    history = getattr(output, "_keras_history", None)
    layer = history[0] if history else model.layers[-1]
    name = type(layer).__name__.lower()
    if name in ("softmax", "sigmoid"):
        return name
    activation = getattr(layer, "activation", None)
    act_name = getattr(activation, "__name__", None) or (
        activation if isinstance(activation, str) else None)
    if act_name in ("softmax", "sigmoid"):
        return act_name
    if act_name == "linear" or (activation is None and hasattr(layer, "activation")):
        return "logits"
    return "probabilities"


def main_output(outputs):
    """Deep-supervision models return several outputs; the first is the prediction."""
    if isinstance(outputs, dict):
        return next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        return outputs[0]
    return outputs


def to_probabilities(scores, kind):
    """Model output -> probabilities (float32): softmax/sigmoid applied to logits only."""
    scores = tf.cast(scores, tf.float32)
    if kind != "logits":
        return scores
    if scores.shape[-1] == 1:
        return tf.sigmoid(scores)
    return tf.nn.softmax(scores, axis=-1)


def to_labels(probabilities):
    """Class indices (int32): argmax over classes, or p > 0.5 for a single binary channel."""
    if probabilities.shape[-1] == 1:
        return tf.cast(probabilities[..., 0] > 0.5, tf.int32)
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32)


def pad_to_multiple(images, multiple):
    """Pad a [N, H, W, C] tensor at the bottom/right to multiples of ``multiple``.

    Edge replication by gathering clamped indices: unlike tf.pad's REFLECT/SYMMETRIC it works
    for any pad size (a 5-pixel image padded to 32) and converts to TFLite and ONNX as Gather.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded_h = (height + multiple - 1) // multiple * multiple
    padded_w = (width + multiple - 1) // multiple * multiple
    rows = tf.minimum(tf.range(padded_h), height - 1)
    cols = tf.minimum(tf.range(padded_w), width - 1)
    return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)


# ----------------------------------------------------------------------------- input handling

def _as_image_array(image, channels, where):
    """One image as a float32 (H, W, C) array with the model's channel count."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"{where}: expected an image of shape (H, W), (H, W, 1) or (H, W, 3); "
                         f"got shape {array.shape}.")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{where}: image has no pixels (shape {array.shape}).")
    if array.shape[-1] != channels:
        if array.shape[-1] == 1:
            array = np.repeat(array, channels, axis=-1)
        else:
            raise ValueError(f"{where}: the model takes {channels}-channel images; got "
                             f"{array.shape[-1]} channels (shape {array.shape}). Pass "
                             f"{channels}-channel or 1-channel (grayscale) images.")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{where}: images must hold numbers in [0, 255]; got dtype {array.dtype}.")
    return array.astype(np.float32, copy=False)


def _split_input(images, channels):
    """-> (list of (H, W, C) float arrays, how to shape the result).

    Shapes: (H, W) and (H, W, C) are one image; (N, H, W) is a batch of grayscale images unless
    its last axis is 1 or the model's channel count; (N, H, W, C) is a batch; a list is a list.
    """
    if isinstance(images, (list, tuple)):
        arrays = [_as_image_array(im, channels, f"images[{i}]") for i, im in enumerate(images)]
        return arrays, "list"
    array = np.asarray(images)
    if array.ndim == 2:
        return [_as_image_array(array, channels, "image")], "single"
    if array.ndim == 3:
        if array.shape[-1] in (1, channels):
            return [_as_image_array(array, channels, "image")], "single"
        return [_as_image_array(a, channels, f"images[{i}]") for i, a in enumerate(array)], "batch"
    if array.ndim == 4:
        return [_as_image_array(a, channels, f"images[{i}]") for i, a in enumerate(array)], "batch"
    raise ValueError("images must be (H, W), (H, W, C), (N, H, W), (N, H, W, C) or a list of "
                     f"images; got an array of shape {array.shape}.")


def size_pair(value, what):
    """An int or (height, width) as a pair of positive ints; a ValueError names ``what``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or (height, width); got {value!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"{what} sides must be positive; got {value!r}.")
    return height, width


def _tile_size(tile):
    return None if tile is None else size_pair(tile, "tile")


def window_starts(length, tile, stride):
    """Window offsets along one axis; the last window is moved back to end at the edge."""
    count = max(length - tile + stride - 1, 0) // stride + 1
    return [min(i * stride, max(length - tile, 0)) for i in range(count)]


def _hann(length):
    i = np.arange(length, dtype=np.float64)
    return np.maximum(np.sin(math.pi * (i + 0.5) / length) ** 2, _MIN_WEIGHT).astype(np.float32)


# ----------------------------------------------------------------------------- the predictor

# One traced function per model, reused across calls: reduce_retracing relaxes the traced shape
# to dynamic after the second distinct size, so varied image sizes do not retrace each time.
_RUNNERS = weakref.WeakKeyDictionary()


def _runner(model):
    fn = _RUNNERS.get(model)
    if fn is None:
        kind = output_kind(model)

        def run(batch):
            return to_probabilities(main_output(model(batch, training=False)), kind)

        fn = tf.function(run, reduce_retracing=True)
        _RUNNERS[model] = fn
    return fn


class _Predictor:
    def __init__(self, model, batch_size, tile, overlap, multiple):
        self.run_model = _runner(model)
        self.batch_size = batch_size
        self.multiple = multiple
        self.static = model_static_size(model)
        self.tile = tile
        self.overlap = overlap
        if self.static is not None:
            # A fixed-size model can only see windows of its own size.
            if tile is not None and tuple(tile) != self.static:
                raise ValueError(f"This model takes {self.static[0]}x{self.static[1]} inputs only; "
                                 f"tile must be None or {self.static}, got {tile}.")
            self.tile = self.static

    def _padded(self, batch):
        """Probabilities for a batch of equal-size images: pad, run in chunks, crop back."""
        height, width = batch.shape[1], batch.shape[2]
        if self.static is not None:
            th, tw = self.static
            padded = tf.gather(tf.gather(batch, tf.minimum(tf.range(th), height - 1), axis=1),
                               tf.minimum(tf.range(tw), width - 1), axis=2)
        else:
            padded = pad_to_multiple(batch, self.multiple)
        chunks = [self.run_model(padded[i:i + self.batch_size])
                  for i in range(0, int(padded.shape[0]), self.batch_size)]
        probs = chunks[0] if len(chunks) == 1 else tf.concat(chunks, axis=0)
        return probs[:, :height, :width]

    def _tiled(self, image):
        """Sliding-window probabilities for one (H, W, C) image."""
        height, width = int(image.shape[0]), int(image.shape[1])
        th, tw = min(self.tile[0], height), min(self.tile[1], width)
        stride_h = max(int(self.tile[0] * (1 - self.overlap)), 1)
        stride_w = max(int(self.tile[1] * (1 - self.overlap)), 1)
        ys = window_starts(height, self.tile[0], stride_h)
        xs = window_starts(width, self.tile[1], stride_w)
        boxes = [(y, x) for y in ys for x in xs]
        weight = tf.constant(_hann(th)[:, None] * _hann(tw)[None, :])[..., None]
        accumulator = None
        for start in range(0, len(boxes), self.batch_size):
            group = boxes[start:start + self.batch_size]
            windows = tf.stack([image[y:y + th, x:x + tw] for y, x in group])
            probs = self._padded(windows) * weight
            if accumulator is None:
                accumulator = tf.Variable(tf.zeros((height, width, probs.shape[-1]), tf.float32),
                                          trainable=False)
            for (y, x), p in zip(group, tf.unstack(probs)):
                accumulator[y:y + th, x:x + tw].assign(accumulator[y:y + th, x:x + tw] + p)
        # The windows form a full grid and the weight is separable, so the per-pixel weight sum
        # is the outer product of the per-axis sums.
        row_weight = np.zeros(height, np.float32)
        col_weight = np.zeros(width, np.float32)
        for y in ys:
            row_weight[y:y + th] += _hann(th)
        for x in xs:
            col_weight[x:x + tw] += _hann(tw)
        total = tf.constant(row_weight[:, None] * col_weight[None, :])[..., None]
        return tf.convert_to_tensor(accumulator) / total

    def at_size(self, batch):
        if self.tile is None:
            return self._padded(batch)
        return tf.stack([self._tiled(image) for image in tf.unstack(batch)])

    def with_tta(self, batch, scales, flip):
        """Probabilities averaged over scales and (optionally) horizontal flips."""
        height, width = int(batch.shape[1]), int(batch.shape[2])
        total, count = None, 0
        for scale in scales:
            size = (max(int(round(height * scale)), 1), max(int(round(width * scale)), 1))
            scaled = batch if size == (height, width) else tf.image.resize(batch, size, "bilinear")
            for flipped in ((False, True) if flip else (False,)):
                x = tf.reverse(scaled, axis=[2]) if flipped else scaled
                probs = self.at_size(x)
                if flipped:
                    probs = tf.reverse(probs, axis=[2])
                if size != (height, width):
                    probs = tf.image.resize(probs, (height, width), "bilinear")
                total = probs if total is None else total + probs
                count += 1
        return total if count == 1 else total / count


def _check_options(batch_size, overlap, scales):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap!r}.")
    scales = tuple(float(s) for s in np.atleast_1d(scales))
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers; got {scales!r}.")
    return scales


def predict(model, images, *, batch_size=4, tile=None, overlap=0.25, scales=(1.0,), flip=False,
            return_probabilities=False, multiple=None):
    """Class maps for images of any size.

    Args:
        model: a segmentation model taking RGB [0, 255] images, output (N, H, W, K) scores
            (softmax, sigmoid or logits; one sigmoid/logit channel is a binary model).
        images: uint8 (or float in [0, 255]) array (N, H, W, C) or one image (H, W, C);
            grayscale (H, W), (N, H, W) or (..., 1) is repeated to the model's channel count;
            or a list of images of different sizes.
        batch_size: images (or windows) per forward pass.
        tile: None for whole-image inference, else the sliding-window size, an int or
            (height, width). A model built for a fixed input size always slides windows of
            that size.
        overlap: fraction of the window two neighbouring windows share, in [0, 1).
        scales: test-time resize factors; probabilities are resized back and averaged.
        flip: also predict the horizontally flipped image at each scale (test-time augmentation).
        return_probabilities: also return the averaged probabilities (float32, (..., K)).
        multiple: the side multiple the model needs; default the model's ``input_multiple``
            attribute if it has one, else 32 (which every kerasseg architecture accepts).

    Returns:
        int32 class maps shaped like the input without its channel axis: (H, W) for one image,
        (N, H, W) for a batch, a list for a list. With ``return_probabilities`` a pair
        ``(labels, probabilities)`` of matching structure.
    """
    scales = _check_options(batch_size, overlap, scales)
    predictor = _Predictor(model, int(batch_size), _tile_size(tile), float(overlap),
                           model_multiple(model, multiple))
    arrays, form = _split_input(images, model_channels(model))

    # Equal-size images share batches; results are put back in input order.
    by_shape = {}
    for index, array in enumerate(arrays):
        by_shape.setdefault(array.shape, []).append(index)
    labels, probabilities = [None] * len(arrays), [None] * len(arrays)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            batch = tf.constant(np.stack([arrays[i] for i in chunk]))
            probs = predictor.with_tta(batch, scales, flip)
            chunk_labels = to_labels(probs).numpy()
            for j, i in enumerate(chunk):
                labels[i] = chunk_labels[j]
                if return_probabilities:
                    probabilities[i] = probs[j].numpy()

    if not arrays:
        empty = np.zeros(np.shape(images)[:3] if form == "batch" else (0,), np.int32)
        labels = [] if form == "list" else empty
        return (labels, labels) if return_probabilities else labels
    if form == "single":
        labels, probabilities = labels[0], probabilities[0]
    elif form == "batch":
        labels = np.stack(labels)
        probabilities = np.stack(probabilities) if return_probabilities else None
    return (labels, probabilities) if return_probabilities else labels
