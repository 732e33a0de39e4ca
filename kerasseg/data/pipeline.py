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

Instance targets: when the label is a dict with "boxes" [M,4], "classes" [M] and "masks" [M,H,W],
the masks follow the image through the same steps (nearest neighbour), photometric distortion
touches the image only, boxes are recomputed as the tight boxes of the output masks, instances
whose mask ends up empty are dropped, and each element is padded to `max_instances` slots (box 0,
class -1, mask 0; beyond `max_instances` the largest masks by area are kept). Output: `(float32
[B,h,w,C], {"boxes": float32 [B,N,4], "classes": int32 [B,N], "masks": uint8 [B,N,h,w]})`. See
`kerasseg.data.instances` for the details and the checks run inside the pipeline.

Panoptic targets: a label dict with "semantic" [H,W] and "instance_ids" [H,W] follows the mask
steps above (both maps nearest neighbour, padding void: semantic `ignore_index`, instance 0).
Output: `(float32 [B,h,w,C], {"semantic": int32 [B,h,w], "instance_ids": int32 [B,h,w]})`; see
`kerasseg.data.panoptic`.
"""

import types

import tensorflow as tf

from kerasseg.data import instances as I
from kerasseg.data import panoptic as P
from kerasseg.data import transforms as T
from kerasseg.data.photometric import photometric as distort
from kerasseg.data.photometric import photometric_channels as photometric_channels_of

__all__ = ["prepare", "AUTOTUNE"]

AUTOTUNE = tf.data.AUTOTUNE


def prepare(
    ds,
    batch_size=8,
    crop_size=None,
    training=True,
    seed=None,
    scale_range=(0.5, 2.0),
    base_size=None,
    cat_max_ratio=None,
    cat_max_tries=10,
    flip=True,
    photometric=True,
    ignore_index=255,
    cache=False,
    shuffle=None,
    shuffle_buffer=64,
    repeat=False,
    drop_remainder=False,
    pad_multiple=None,
    brightness_delta=32.0,
    contrast_range=(0.5, 1.5),
    saturation_range=(0.5, 1.5),
    hue_delta=18.0,
    num_parallel_calls=AUTOTUNE,
    prefetch=True,
    photometric_channels=None,
    max_instances=100,
):
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
      max_instances: instance targets only: slots per image N (more instances: the N with the
        largest mask area after augmentation are kept; fewer: padded with class -1).
    Returns:
      tf.data.Dataset of (float32 [B,h,w,C], int32 [B,h,w]) (int32 [B] for scalar labels); for
      instance targets (float32 [B,h,w,C], {"boxes": float32 [B,N,4], "classes": int32 [B,N],
      "masks": uint8 [B,N,h,w]}).
    """
    o = types.SimpleNamespace(**locals())  # the options, by name, for the helpers below
    o.crop, o.scale_range, o.base_size = _check_arguments(
        ds, batch_size, crop_size, scale_range, cat_max_ratio, base_size
    )
    panoptic = P.is_panoptic_spec(ds.element_spec)
    if panoptic:
        ds = ds.map(P.encoder(ignore_index), num_parallel_calls=num_parallel_calls)
    instance = I.is_instance_spec(ds.element_spec)
    if instance:
        I.check_spec(ds.element_spec, o)
    ds = ds.map(I.standardize if instance else T.standardize, num_parallel_calls=num_parallel_calls)
    has_mask = instance or ds.element_spec[1].shape.rank == 2
    photo_channels = photometric_channels_of(ds.element_spec[0].shape[-1], photometric_channels)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if training if shuffle is None else shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        augment = (
            I.augmentation(o, photo_channels)
            if instance
            else _augmentation(o, has_mask, photo_channels)
        )
        ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=num_parallel_calls)
    else:
        evaluate = (
            I.evaluation(o)
            if instance
            else _evaluation(has_mask, o.crop, pad_multiple, ignore_index)
        )
        ds = ds.map(evaluate, num_parallel_calls=num_parallel_calls)
    if instance:
        ds = I.batch(ds, o)
    else:
        ds = _batch(ds, batch_size, o.crop, pad_multiple, has_mask, ignore_index, drop_remainder)
    if panoptic:
        ds = ds.map(P.decoder(ignore_index))
    return ds.prefetch(AUTOTUNE) if prefetch else ds


def _check_arguments(ds, batch_size, crop_size, scale_range, cat_max_ratio, base_size):
    """-> (crop, scale_range, base_size), checked and normalised (scale (1, 1) is None)."""
    if not isinstance(ds, tf.data.Dataset):
        raise TypeError(f"prepare expects a tf.data.Dataset, got {type(ds).__name__}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    crop = T.pair(crop_size, "crop_size")
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
    return crop, scale_range, base_size


def _scale_and_crop(image, mask, seed, o):
    if o.scale_range is not None and o.crop is not None:
        return T.scaled_random_crop(
            image,
            mask,
            seed,
            o.scale_range,
            o.base_size,
            o.crop,
            o.ignore_index,
            o.cat_max_ratio,
            o.cat_max_tries,
        )
    if o.scale_range is not None:
        return T.random_resize(image, mask, seed, o.scale_range, o.base_size)
    if o.crop is not None:
        return T.random_crop(
            image, mask, seed, o.crop, o.ignore_index, o.cat_max_ratio, o.cat_max_tries
        )
    return image, mask


def _augmentation(o, has_mask, photo_channels):
    """The training map ``((image, label), seed) -> (image, label)`` for ``prepare``'s
    options ``o`` (crop, scale and base size already checked)."""
    strengths = (
        float(o.brightness_delta),
        o.contrast_range,
        o.saturation_range,
        float(o.hue_delta),
    )

    def augment(element, elem_seed):
        image, label = element
        mask = label if has_mask else None
        image, mask = _scale_and_crop(image, mask, elem_seed, o)
        if o.flip:
            do_flip = T.uniform(elem_seed, T.S_FLIP, 0.0, 1.0) < 0.5
            image = tf.cond(do_flip, lambda: tf.reverse(image, [1]), lambda: image)
            if mask is not None:
                mask = tf.cond(do_flip, lambda: tf.reverse(mask, [1]), lambda: mask)
        if o.photometric:
            image = distort(image, elem_seed, *strengths, channels=photo_channels)
        if o.pad_multiple:
            image, mask = T.pad_multiple(image, mask, int(o.pad_multiple), o.ignore_index)
        return image, (mask if has_mask else label)

    return augment


def _evaluation(has_mask, crop, pad_multiple, ignore_index):
    """The evaluation map: fit within and pad to ``crop``, then to ``pad_multiple``."""

    def evaluate(image, label):
        mask = label if has_mask else None
        if crop is not None:
            image, mask = T.fit_within(image, mask, crop)
            image, mask = T.pad_to(image, mask, crop[0], crop[1], ignore_index)
        if pad_multiple:
            image, mask = T.pad_multiple(image, mask, int(pad_multiple), ignore_index)
        return image, (mask if has_mask else label)

    return evaluate


def _batch(ds, batch_size, crop, pad_multiple, has_mask, ignore_index, drop_remainder):
    """Batches: fixed-size ones (with static shapes) for a crop, else padded to the largest."""
    fixed = crop is not None
    if fixed or batch_size == 1:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    else:
        ds = ds.padded_batch(
            batch_size,
            padding_values=(0.0, ignore_index if has_mask else 0),
            drop_remainder=drop_remainder,
        )
    if not fixed:
        return ds
    h = crop[0] if not pad_multiple else -(-crop[0] // pad_multiple) * pad_multiple
    w = crop[1] if not pad_multiple else -(-crop[1] // pad_multiple) * pad_multiple
    channels = ds.element_spec[0].shape[-1]

    def set_static(image, label):
        image = tf.ensure_shape(image, (None, h, w, channels))
        if has_mask:
            label = tf.ensure_shape(label, (None, h, w))
        return image, label

    return ds.map(set_static)
