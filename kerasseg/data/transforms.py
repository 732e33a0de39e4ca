"""The pipeline's transforms, TensorFlow ops run inside ``tf.data`` maps: stateless random
resize and crop (the crop sampled straight from the source, mmsegmentation's ``cat_max_ratio``
re-draw), padding, and the evaluation fit-and-pad. See ``kerasseg.data`` for the recipe."""

import tensorflow as tf

__all__ = [
    "S_SCALE",
    "S_CROP",
    "S_FLIP",
    "S_PHOTO",
    "pair",
    "standardize",
    "sub_seed",
    "uniform",
    "resize",
    "random_resize",
    "scaled_size",
    "window_sampler",
    "scaled_random_crop",
    "pad_to",
    "crop_ok",
    "choose_offsets",
    "random_crop",
    "pad_multiple",
    "fit_within",
]

# Sub-seed identifiers: one per random decision so that switching one augmentation off does not
# change the draws of the others.
S_SCALE, S_CROP, S_FLIP, S_PHOTO = 1, 2, 3, 4


def pair(value, name):
    if value is None:
        return None
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or (height, width), got {value}")
    return value


def standardize(image, label):
    image = tf.convert_to_tensor(image)
    label = tf.convert_to_tensor(label)
    if image.shape.rank == 2:  # grey without a channel axis
        image = image[..., None]
    if image.shape.rank != 3:
        raise ValueError(f"prepare expects images [H,W,C]; got shape {image.shape}")
    if label.shape.rank == 3:
        label = tf.squeeze(label, -1)
    return tf.cast(image, tf.float32), tf.cast(label, tf.int32)


def sub_seed(seed, k):
    return tf.stack([seed, tf.constant(k, tf.int64)])


def uniform(seed, k, lo, hi, shape=()):
    return tf.random.stateless_uniform(
        shape, sub_seed(seed, k), minval=lo, maxval=hi, dtype=tf.float32
    )


def resize(image, mask, size):
    image = tf.image.resize(image, size, method="bilinear")
    if mask is not None:
        mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def random_resize(image, mask, seed, scale_range, base_size):
    return resize(image, mask, scaled_size(image, seed, scale_range, base_size))


def scaled_size(image, seed, scale_range, base_size):
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    ratio = uniform(seed, S_SCALE, scale_range[0], scale_range[1])
    if base_size is None:
        factor = ratio
    elif isinstance(base_size, int):
        factor = base_size * ratio / tf.reduce_min(shape)
    else:  # mmseg scale (long, short): the largest size fitting in long*ratio x short*ratio
        long_side, short_side = max(base_size), min(base_size)
        factor = tf.minimum(
            long_side * ratio / tf.reduce_max(shape), short_side * ratio / tf.reduce_min(shape)
        )
    return tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)


def window_sampler(tensor, new_size, window, method):
    """f(y, x): the window (rows y.., cols x.. of size `window`) of `tensor` resized to `new_size`,
    computed without resizing the whole tensor.

    Samples sit where tf.image.resize (half-pixel centres) puts them. A one-pixel edge copy around
    the source reproduces resize's clamping at the borders; crop_and_resize does the sampling.
    """
    shape = tf.shape(tensor)
    src = tf.pad(tf.cast(tensor, tf.float32), [[1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")[None]
    # Source pixels per output pixel.
    step = tf.cast(shape[:2], tf.float32) / tf.cast(new_size, tf.float32)
    span = tf.cast(tf.stack([shape[0] + 1, shape[1] + 1]), tf.float32)  # padded size - 1
    # Nearest sampling meets its ties (e.g. at scale 0.5) exactly; nudge them the way resize
    # breaks them.
    nudge = 1e-4 if method == "nearest" else 0.0

    def sample(y, x):
        start = (tf.cast(tf.stack([y, x]), tf.float32) + 0.5) * step - 0.5 + 1.0 + nudge
        end = start + tf.cast(window - 1, tf.float32) * step
        box = tf.concat([start / span, end / span], 0)[None]
        return tf.image.crop_and_resize(src, box, [0], window, method=method)[0]

    return sample


def scaled_random_crop(
    image, mask, seed, scale_range, base_size, crop, ignore_index, cat_max_ratio, cat_max_tries
):
    """Random resize followed by a random crop, sampling only the cropped window (much cheaper than
    resizing whole images up to twice their size). Same result as resize-then-crop, up to float
    rounding where a nearest-neighbour sample falls exactly between two label pixels."""
    new_size = scaled_size(image, seed, scale_range, base_size)
    window = tf.minimum(new_size, tf.constant(crop, tf.int32))
    image_at = window_sampler(image, new_size, window, "bilinear")
    mask_at = None
    if mask is not None:
        mask_at = window_sampler(mask[..., None], new_size, window, "nearest")

    def crop_mask(y, x):
        return tf.cast(mask_at(y, x)[..., 0], tf.int32)

    y, x = choose_offsets(
        new_size,
        crop,
        seed,
        crop_mask if mask is not None else None,
        ignore_index,
        cat_max_ratio,
        cat_max_tries,
    )
    image = image_at(y, x)
    mask = crop_mask(y, x) if mask is not None else None
    return pad_to(image, mask, crop[0], crop[1], ignore_index)


def pad_to(image, mask, height, width, ignore_index):
    """Pad bottom/right up to at least (height, width)."""
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=0.0)
    if mask is not None:
        mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=ignore_index)
    return image, mask


def crop_ok(crop, ignore_index, cat_max_ratio):
    labels = tf.boolean_mask(crop, tf.not_equal(crop, ignore_index))
    counts = tf.math.bincount(tf.maximum(labels, 0))
    present = tf.math.count_nonzero(counts)
    total = tf.maximum(tf.reduce_sum(counts), 1)
    largest = tf.reduce_max(tf.concat([counts, [0]], 0))
    share = tf.cast(largest, tf.float32) / tf.cast(total, tf.float32)
    return tf.logical_and(present > 1, share < cat_max_ratio)


def choose_offsets(size, crop, seed, crop_mask, ignore_index, cat_max_ratio, cat_max_tries):
    """Crop offsets for an image of `size` (before padding); with `cat_max_ratio`, re-drawn until
    `crop_mask(y, x)` passes the mmseg rule or the tries run out."""
    max_y = tf.maximum(size[0] - crop[0], 0) + 1
    max_x = tf.maximum(size[1] - crop[1], 0) + 1

    def offsets(attempt):
        s = tf.stack([seed, tf.cast(S_CROP * 1000 + attempt, tf.int64)])
        u = tf.random.stateless_uniform([2], s, dtype=tf.float32)
        y = tf.minimum(tf.cast(u[0] * tf.cast(max_y, tf.float32), tf.int32), max_y - 1)
        x = tf.minimum(tf.cast(u[1] * tf.cast(max_x, tf.float32), tf.int32), max_x - 1)
        return y, x

    y, x = offsets(0)
    if cat_max_ratio is None or crop_mask is None or cat_max_ratio >= 1.0:
        return y, x

    def cond(attempt, y, x):
        ok = crop_ok(crop_mask(y, x), ignore_index, cat_max_ratio)
        return tf.logical_and(attempt < cat_max_tries, tf.logical_not(ok))

    def body(attempt, y, x):
        y, x = offsets(attempt)
        return attempt + 1, y, x

    _, y, x = tf.while_loop(cond, body, (tf.constant(1), y, x))
    return y, x


def random_crop(image, mask, seed, crop, ignore_index, cat_max_ratio, cat_max_tries):
    size = tf.shape(image)[:2]

    def crop_mask(y, x):
        return mask[y : y + crop[0], x : x + crop[1]]

    y, x = choose_offsets(
        size,
        crop,
        seed,
        crop_mask if mask is not None else None,
        ignore_index,
        cat_max_ratio,
        cat_max_tries,
    )
    image = image[y : y + crop[0], x : x + crop[1]]
    if mask is not None:
        mask = crop_mask(y, x)
    return pad_to(image, mask, crop[0], crop[1], ignore_index)


def pad_multiple(image, mask, multiple, ignore_index):
    shape = tf.shape(image)
    h = (shape[0] + multiple - 1) // multiple * multiple
    w = (shape[1] + multiple - 1) // multiple * multiple
    return pad_to(image, mask, h, w, ignore_index)


def fit_within(image, mask, size):
    """Scale down (never up) keeping the aspect ratio so the image fits in `size`."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.minimum(1.0, tf.minimum(size[0] / shape[0], size[1] / shape[1]))
    new = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)
    # Clamp guards against rounding to one pixel over the target.
    new = tf.minimum(new, tf.constant(size, tf.int32))
    shrink = factor < 1.0
    image = tf.cond(shrink, lambda: resize(image, None, new)[0], lambda: image)
    if mask is not None:
        mask = tf.cond(
            shrink,
            lambda: tf.image.resize(mask[..., None], new, method="nearest")[..., 0],
            lambda: mask,
        )
    return image, mask
