"""`prepare`: the training / evaluation tf.data pipeline (augmentation, batching, prefetch).

    train = kerasseg.data.prepare(ds, batch_size=8, crop_size=(512, 512), training=True, seed=0)
    val = kerasseg.data.prepare(val_ds, batch_size=1, training=False)

Input: a dataset of `(image uint8|float [H,W,C], mask int [H,W] or [H,W,1])` such as
`kerasseg.datasets.load` yields (C may be 3, 1 or 4 for RGB-D; a scalar label instead of a mask is
passed through untouched while the image is augmented). Output: `(float32 [B,h,w,C] in [0,255],
int32 [B,h,w])`; models normalise their input themselves.

Training (`training=True`) follows the mmsegmentation recipe, all in TensorFlow ops inside the
parallel map:

1. resize by a ratio drawn from `scale_range` keeping the aspect ratio (relative to the image's own
   size, or to `base_size`: an int short side, or mmseg's `(long, short)` scale);
2. pad bottom/right up to `crop_size` (image with 0, mask with `ignore_index`) and take a random
   crop; with `cat_max_ratio` the crop is re-drawn up to `cat_max_tries` times until at least two
   classes are present and none covers more than that share of the crop's labelled pixels;
3. horizontal flip with probability 0.5;
4. photometric distortion, each step with probability 0.5: brightness +-`brightness_delta`,
   contrast x`contrast_range` (before or after the colour steps, at random), saturation
   x`saturation_range`, hue shift +-`hue_delta` in OpenCV's 0..180 hue units as in mmsegmentation
   (18 units = 36 degrees). Only where it means something, by channel count C:
   - C = 3 (RGB): all four steps;
   - C = 1 (grey): brightness and contrast only (saturation and hue need colour);
   - C > 3 (RGB-D, RGB + NIR, ...): all four steps on channels 0..2, read as RGB; the other
     channels (depth, infrared) are left exactly as they are;
   - C = 2: read as grey + one auxiliary channel (grey-D, grey + alpha): brightness and contrast
     on channel 0 only, channel 1 untouched.
   `photometric_channels=k` overrides this: channels 0..k-1 are distorted and the rest left
   alone; k = 3 gets all four steps, any other k brightness and contrast only (one shift and one
   factor for all k channels), e.g. k = 2 for two-band radar or k = 4 for four intensity bands.

Randomness: each element gets its own seed from `tf.data.Dataset.random(seed)` and every random
choice is a stateless op keyed on it. The same `seed` therefore gives identical batches in two runs
(whatever the parallelism), while each epoch still draws new augmentations. `seed=None` is random.

Evaluation (`training=False`) never augments. Without `crop_size`, images keep their native size:
`batch_size=1` is exact, a larger batch pads each batch to its largest image (image 0, mask
`ignore_index`, so padding never counts in metrics). With `crop_size`, images larger than it are
scaled down keeping their aspect ratio (mask by nearest neighbour) and every image is padded to
`crop_size`, giving fixed-shape batches. `pad_multiple=32` additionally pads height and width up to
a multiple of 32 in either mode (for models that need it at native size).
"""
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE

# Sub-seed identifiers: one per random decision so that switching one augmentation off does not
# change the draws of the others.
_S_SCALE, _S_CROP, _S_FLIP, _S_PHOTO = 1, 2, 3, 4


def _pair(value, name):
    if value is None:
        return None
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or (height, width), got {value}")
    return value


def _standardize(image, label):
    image = tf.convert_to_tensor(image)
    label = tf.convert_to_tensor(label)
    if image.shape.rank == 2:  # grey without a channel axis
        image = image[..., None]
    if image.shape.rank != 3:
        raise ValueError(f"prepare expects images [H,W,C]; got shape {image.shape}")
    if label.shape.rank == 3:
        label = tf.squeeze(label, -1)
    return tf.cast(image, tf.float32), tf.cast(label, tf.int32)


def _sub_seed(seed, k):
    return tf.stack([seed, tf.constant(k, tf.int64)])


def _uniform(seed, k, lo, hi, shape=()):
    return tf.random.stateless_uniform(shape, _sub_seed(seed, k), minval=lo, maxval=hi,
                                       dtype=tf.float32)


def _resize(image, mask, size):
    image = tf.image.resize(image, size, method="bilinear")
    if mask is not None:
        mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def _random_resize(image, mask, seed, scale_range, base_size):
    return _resize(image, mask, _scaled_size(image, seed, scale_range, base_size))


def _scaled_size(image, seed, scale_range, base_size):
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    ratio = _uniform(seed, _S_SCALE, scale_range[0], scale_range[1])
    if base_size is None:
        factor = ratio
    elif isinstance(base_size, int):
        factor = base_size * ratio / tf.reduce_min(shape)
    else:  # mmseg scale (long, short): the largest size fitting in long*ratio x short*ratio
        long_side, short_side = max(base_size), min(base_size)
        factor = tf.minimum(long_side * ratio / tf.reduce_max(shape),
                            short_side * ratio / tf.reduce_min(shape))
    return tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)


def _window_sampler(tensor, new_size, window, method):
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


def _scaled_random_crop(image, mask, seed, scale_range, base_size, crop, ignore_index,
                        cat_max_ratio, cat_max_tries):
    """Random resize followed by a random crop, sampling only the cropped window (much cheaper than
    resizing whole images up to twice their size). Same result as resize-then-crop, up to float
    rounding where a nearest-neighbour sample falls exactly between two label pixels."""
    new_size = _scaled_size(image, seed, scale_range, base_size)
    window = tf.minimum(new_size, tf.constant(crop, tf.int32))
    image_at = _window_sampler(image, new_size, window, "bilinear")
    mask_at = None
    if mask is not None:
        mask_at = _window_sampler(mask[..., None], new_size, window, "nearest")

    def crop_mask(y, x):
        return tf.cast(mask_at(y, x)[..., 0], tf.int32)

    y, x = _choose_offsets(new_size, crop, seed, crop_mask if mask is not None else None,
                           ignore_index, cat_max_ratio, cat_max_tries)
    image = image_at(y, x)
    mask = crop_mask(y, x) if mask is not None else None
    return _pad_to(image, mask, crop[0], crop[1], ignore_index)


def _pad_to(image, mask, height, width, ignore_index):
    """Pad bottom/right up to at least (height, width)."""
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=0.0)
    if mask is not None:
        mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=ignore_index)
    return image, mask


def _crop_ok(crop, ignore_index, cat_max_ratio):
    labels = tf.boolean_mask(crop, tf.not_equal(crop, ignore_index))
    counts = tf.math.bincount(tf.maximum(labels, 0))
    present = tf.math.count_nonzero(counts)
    total = tf.maximum(tf.reduce_sum(counts), 1)
    largest = tf.reduce_max(tf.concat([counts, [0]], 0))
    share = tf.cast(largest, tf.float32) / tf.cast(total, tf.float32)
    return tf.logical_and(present > 1, share < cat_max_ratio)


def _choose_offsets(size, crop, seed, crop_mask, ignore_index, cat_max_ratio, cat_max_tries):
    """Crop offsets for an image of `size` (before padding); with `cat_max_ratio`, re-drawn until
    `crop_mask(y, x)` passes the mmseg rule or the tries run out."""
    max_y = tf.maximum(size[0] - crop[0], 0) + 1
    max_x = tf.maximum(size[1] - crop[1], 0) + 1

    def offsets(attempt):
        s = tf.stack([seed, tf.cast(_S_CROP * 1000 + attempt, tf.int64)])
        u = tf.random.stateless_uniform([2], s, dtype=tf.float32)
        y = tf.minimum(tf.cast(u[0] * tf.cast(max_y, tf.float32), tf.int32), max_y - 1)
        x = tf.minimum(tf.cast(u[1] * tf.cast(max_x, tf.float32), tf.int32), max_x - 1)
        return y, x

    y, x = offsets(0)
    if cat_max_ratio is None or crop_mask is None or cat_max_ratio >= 1.0:
        return y, x

    def cond(attempt, y, x):
        ok = _crop_ok(crop_mask(y, x), ignore_index, cat_max_ratio)
        return tf.logical_and(attempt < cat_max_tries, tf.logical_not(ok))

    def body(attempt, y, x):
        y, x = offsets(attempt)
        return attempt + 1, y, x

    _, y, x = tf.while_loop(cond, body, (tf.constant(1), y, x))
    return y, x


def _random_crop(image, mask, seed, crop, ignore_index, cat_max_ratio, cat_max_tries):
    size = tf.shape(image)[:2]

    def crop_mask(y, x):
        return mask[y:y + crop[0], x:x + crop[1]]

    y, x = _choose_offsets(size, crop, seed, crop_mask if mask is not None else None, ignore_index,
                           cat_max_ratio, cat_max_tries)
    image = image[y:y + crop[0], x:x + crop[1]]
    if mask is not None:
        mask = crop_mask(y, x)
    return _pad_to(image, mask, crop[0], crop[1], ignore_index)


def _photometric_channels(channels, requested):
    """How many leading channels the photometric distortion touches (None: from C, see the module
    docstring; also None when C is only known at run time)."""
    if requested is not None:
        requested = int(requested)
        if requested < 1 or (channels is not None and requested > channels):
            raise ValueError(f"photometric_channels must be in [1, {channels or 'C'}] (the image "
                             f"has {channels or 'an unknown number of'} channels), got {requested}")
        return requested
    if channels is None:
        return None
    return 3 if channels >= 3 else 1


def _photometric(image, seed, brightness_delta, contrast_range, saturation_range, hue_delta,
                 channels=3):
    """Distort the first `channels` channels of `image` (float32 0..255); colour steps
    (saturation, hue) only when channels == 3. channels=None picks 3 or 1 at run time."""
    if channels is None:  # channel count unknown until run time
        num = tf.shape(image)[-1]
        args = (seed, brightness_delta, contrast_range, saturation_range, hue_delta)
        out = tf.cond(num >= 3, lambda: _photometric(image, *args, channels=3),
                      lambda: _photometric(image, *args, channels=1))
        return tf.ensure_shape(out, image.shape)
    rgb, rest = image[..., :channels], image[..., channels:]
    u = _uniform(seed, _S_PHOTO, 0.0, 1.0, shape=(10,))

    def maybe(i, value, neutral):  # apply `value` with probability 0.5
        return tf.where(u[i] < 0.5, value, neutral)

    def lerp(t, lo, hi):
        return lo + (hi - lo) * t

    delta = maybe(0, lerp(u[1], -brightness_delta, brightness_delta), 0.0)
    contrast = maybe(2, lerp(u[3], *contrast_range), 1.0)
    contrast_first = u[4] < 0.5
    saturation = maybe(5, lerp(u[6], *saturation_range), 1.0)
    hue = maybe(7, lerp(u[8], -hue_delta, hue_delta), 0.0) / 180.0

    rgb = tf.clip_by_value(rgb + delta, 0.0, 255.0)
    if channels != 3:  # no colour: brightness then contrast (the order draw does not matter)
        rgb = tf.clip_by_value(rgb * contrast, 0.0, 255.0)
        return tf.concat([rgb, rest], -1)
    rgb = tf.clip_by_value(rgb * tf.where(contrast_first, contrast, 1.0), 0.0, 255.0)
    # The fused HSV kernels are scale-free (S and H do not depend on the value range), so they work
    # on 0..255 directly; each runs only when its step was drawn.
    rgb = tf.cond(tf.not_equal(saturation, 1.0),
                  lambda: tf.image.adjust_saturation(rgb, saturation), lambda: rgb)
    rgb = tf.cond(tf.not_equal(hue, 0.0), lambda: tf.image.adjust_hue(rgb, hue), lambda: rgb)
    rgb = tf.clip_by_value(rgb * tf.where(contrast_first, 1.0, contrast), 0.0, 255.0)
    return tf.concat([rgb, rest], -1)


def _pad_multiple(image, mask, multiple, ignore_index):
    shape = tf.shape(image)
    h = (shape[0] + multiple - 1) // multiple * multiple
    w = (shape[1] + multiple - 1) // multiple * multiple
    return _pad_to(image, mask, h, w, ignore_index)


def _fit_within(image, mask, size):
    """Scale down (never up) keeping the aspect ratio so the image fits in `size`."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.minimum(1.0, tf.minimum(size[0] / shape[0], size[1] / shape[1]))
    new = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)
    # Clamp guards against rounding to one pixel over the target.
    new = tf.minimum(new, tf.constant(size, tf.int32))
    shrink = factor < 1.0
    image = tf.cond(shrink, lambda: _resize(image, None, new)[0], lambda: image)
    if mask is not None:
        mask = tf.cond(shrink,
                       lambda: tf.image.resize(mask[..., None], new, method="nearest")[..., 0],
                       lambda: mask)
    return image, mask


def prepare(ds, batch_size=8, crop_size=None, training=True, seed=None, scale_range=(0.5, 2.0),
            base_size=None, cat_max_ratio=None, cat_max_tries=10, flip=True, photometric=True,
            ignore_index=255, cache=False, shuffle=None, shuffle_buffer=64, repeat=False,
            drop_remainder=False, pad_multiple=None, brightness_delta=32.0,
            contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5), hue_delta=18.0,
            num_parallel_calls=AUTOTUNE, prefetch=True, photometric_channels=None):
    """Batch a `(image, mask)` dataset for `model.fit` / evaluation; see the module docstring.

    Args:
      ds: tf.data.Dataset of (image [H,W,C], mask [H,W] | [H,W,1] | scalar label).
      batch_size: elements per batch.
      crop_size: int or (h, w): training crop (padded when the image is smaller); in evaluation the
        fixed size images are fitted and padded to. None keeps native sizes.
      training: augment (and shuffle, unless shuffle=False) when True.
      seed: int for reproducible shuffling and augmentation; None for fresh randomness.
      scale_range: (lo, hi) resize ratio, or None for no resize. base_size: see module docstring.
      cat_max_ratio, cat_max_tries: the mmseg crop re-draw rule (None disables it).
      flip, photometric: switch those augmentations.
      ignore_index: mask value for padded pixels.
      cache: True caches the decoded input in memory, a string caches to that file path.
      shuffle: shuffle elements (default: training); shuffle_buffer: its buffer size.
      repeat: repeat forever (then give model.fit steps_per_epoch).
      drop_remainder: drop a final smaller batch.
      pad_multiple: pad H, W up to a multiple of this (after cropping / in evaluation).
      brightness_delta, contrast_range, saturation_range, hue_delta: photometric strengths.
      photometric_channels: how many leading channels photometric distortion touches. None: by
        the image's channel count C: RGB (C = 3) gets brightness, contrast, saturation and hue;
        grey (C = 1) brightness and contrast; C > 3 (RGB-D, multispectral) the colour distortion on
        channels 0..2 and the rest (depth) untouched; C = 2 (grey + depth/alpha) brightness and
        contrast on channel 0, channel 1 untouched. An int k: channels 0..k-1 are distorted (the
        colour steps too when k = 3, else brightness and contrast only) and the rest untouched.
      num_parallel_calls: parallelism of the map (AUTOTUNE).
      prefetch: prefetch batches (AUTOTUNE).
    Returns:
      tf.data.Dataset of (float32 [B,h,w,C], int32 [B,h,w]) (int32 [B] for scalar labels).
    """
    if not isinstance(ds, tf.data.Dataset):
        raise TypeError(f"prepare expects a tf.data.Dataset, got {type(ds).__name__}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    crop = _pair(crop_size, "crop_size")
    if scale_range is not None:
        scale_range = (float(scale_range[0]), float(scale_range[1]))
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be (lo, hi) with 0 < lo <= hi, got {scale_range}")
        if scale_range == (1.0, 1.0):
            scale_range = None
    if cat_max_ratio is not None and not 0 < cat_max_ratio <= 1:
        raise ValueError(f"cat_max_ratio must be in (0, 1], got {cat_max_ratio}")
    if isinstance(base_size, (tuple, list)):
        base_size = tuple(int(v) for v in base_size)
    if len(ds.element_spec) != 2:
        raise ValueError(f"prepare expects (image, mask) elements, got {ds.element_spec}")

    ds = ds.map(_standardize, num_parallel_calls=num_parallel_calls)
    has_mask = ds.element_spec[1].shape.rank == 2
    photo_channels = _photometric_channels(ds.element_spec[0].shape[-1], photometric_channels)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle is None:
        shuffle = training
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    if training:
        def augment(element, elem_seed):
            image, label = element
            mask = label if has_mask else None
            if scale_range is not None and crop is not None:
                image, mask = _scaled_random_crop(image, mask, elem_seed, scale_range, base_size,
                                                  crop, ignore_index, cat_max_ratio, cat_max_tries)
            elif scale_range is not None:
                image, mask = _random_resize(image, mask, elem_seed, scale_range, base_size)
            elif crop is not None:
                image, mask = _random_crop(image, mask, elem_seed, crop, ignore_index,
                                           cat_max_ratio, cat_max_tries)
            if flip:
                do_flip = _uniform(elem_seed, _S_FLIP, 0.0, 1.0) < 0.5
                image = tf.cond(do_flip, lambda: tf.reverse(image, [1]), lambda: image)
                if mask is not None:
                    mask = tf.cond(do_flip, lambda: tf.reverse(mask, [1]), lambda: mask)
            if photometric:
                image = _photometric(image, elem_seed, float(brightness_delta), contrast_range,
                                     saturation_range, float(hue_delta), channels=photo_channels)
            if pad_multiple:
                image, mask = _pad_multiple(image, mask, int(pad_multiple), ignore_index)
            return image, (mask if has_mask else label)

        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=num_parallel_calls)
        fixed = crop is not None
    else:
        def evaluate(image, label):
            mask = label if has_mask else None
            if crop is not None:
                image, mask = _fit_within(image, mask, crop)
                image, mask = _pad_to(image, mask, crop[0], crop[1], ignore_index)
            if pad_multiple:
                image, mask = _pad_multiple(image, mask, int(pad_multiple), ignore_index)
            return image, (mask if has_mask else label)

        ds = ds.map(evaluate, num_parallel_calls=num_parallel_calls)
        fixed = crop is not None

    if fixed or batch_size == 1:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    else:
        ds = ds.padded_batch(batch_size, padding_values=(0.0, ignore_index if has_mask else 0),
                             drop_remainder=drop_remainder)
    if fixed:
        h = crop[0] if not pad_multiple else -(-crop[0] // pad_multiple) * pad_multiple
        w = crop[1] if not pad_multiple else -(-crop[1] // pad_multiple) * pad_multiple
        channels = ds.element_spec[0].shape[-1]

        def set_static(image, label):
            image = tf.ensure_shape(image, (None, h, w, channels))
            if has_mask:
                label = tf.ensure_shape(label, (None, h, w))
            return image, label

        ds = ds.map(set_static)
    if prefetch:
        ds = ds.prefetch(AUTOTUNE)
    return ds
