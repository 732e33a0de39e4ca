"""Photometric distortion (mmsegmentation's), on the channels where it means something."""

import tensorflow as tf

from kerasseg.data.transforms import S_PHOTO, uniform

__all__ = ["photometric_channels", "photometric"]


def photometric_channels(channels, requested):
    """How many leading channels the photometric distortion touches (None: from C, see the module
    docstring; also None when C is only known at run time)."""
    if requested is not None:
        requested = int(requested)
        if requested < 1 or (channels is not None and requested > channels):
            raise ValueError(
                f"photometric_channels must be in [1, {channels or 'C'}] (the image "
                f"has {channels or 'an unknown number of'} channels), got {requested}"
            )
        return requested
    if channels is None:
        return None
    return 3 if channels >= 3 else 1


def photometric(
    image, seed, brightness_delta, contrast_range, saturation_range, hue_delta, channels=3
):
    """Distort the first `channels` channels of `image` (float32 0..255); colour steps
    (saturation, hue) only when channels == 3. channels=None picks 3 or 1 at run time."""
    if channels is None:  # channel count unknown until run time
        num = tf.shape(image)[-1]
        args = (seed, brightness_delta, contrast_range, saturation_range, hue_delta)
        out = tf.cond(
            num >= 3,
            lambda: photometric(image, *args, channels=3),
            lambda: photometric(image, *args, channels=1),
        )
        return tf.ensure_shape(out, image.shape)
    rgb, rest = image[..., :channels], image[..., channels:]
    u = uniform(seed, S_PHOTO, 0.0, 1.0, shape=(10,))

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
    rgb = tf.cond(
        tf.not_equal(saturation, 1.0),
        lambda: tf.image.adjust_saturation(rgb, saturation),
        lambda: rgb,
    )
    rgb = tf.cond(tf.not_equal(hue, 0.0), lambda: tf.image.adjust_hue(rgb, hue), lambda: rgb)
    rgb = tf.clip_by_value(rgb * tf.where(contrast_first, 1.0, contrast), 0.0, 255.0)
    return tf.concat([rgb, rest], -1)
